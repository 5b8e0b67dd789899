// Package stage serves a pipeline's local file artifacts to a Beam job
// server.
//
// Portable job servers pull artifacts from the submitter: after Prepare, the
// submitter opens ArtifactStagingService.ReverseArtifactRetrievalService and
// the server asks for what it needs (resolve_artifact, get_artifact). Artifacts
// streams files from disk in chunks, so a worker binary of any size costs a
// few chunks of memory, and withholds the final chunk of any file whose
// content no longer matches the sha256 the pipeline declares.
package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// Artifact type and role URNs of the Beam model that staging deals with.
const (
	FileArtifactURN = "beam:artifact:type:file:v1"
	GoWorkerRoleURN = "beam:artifact:role:go_worker_binary:v1"
)

const hashReadChunkSize = 1 << 20

// File is a local file a pipeline declares as an artifact.
type File struct {
	// Path is the file's path exactly as the artifact's ArtifactFilePayload
	// names it.
	Path string
	// SHA256 is the declared lower-case hex digest; empty means the pipeline
	// declared none and the content is not checked.
	SHA256 string
}

// FileResolver decides which local file answers a job server's request for
// an artifact. Implementations must refuse artifacts they did not declare:
// the request comes from the job server, which must not be able to read
// arbitrary files of the submitting machine.
type FileResolver interface {
	ResolveFile(a *pipepb.ArtifactInformation) (File, error)
}

// Files is the set of file artifacts a pipeline declares, keyed by path.
type Files map[string]File

// PipelineFiles collects the file artifacts that the pipeline's environments
// depend on. Artifacts of other types are left to the job server.
func PipelineFiles(p *pipepb.Pipeline) (Files, error) {
	files := Files{}
	envIDs := make([]string, 0, len(p.GetComponents().GetEnvironments()))
	for id := range p.GetComponents().GetEnvironments() {
		envIDs = append(envIDs, id)
	}
	sort.Strings(envIDs)
	for _, id := range envIDs {
		for _, dep := range p.GetComponents().GetEnvironments()[id].GetDependencies() {
			if dep.GetTypeUrn() != FileArtifactURN {
				continue
			}
			f, err := FilePayload(dep)
			if err != nil {
				return nil, fmt.Errorf("environment %q: %w", id, err)
			}
			if f.Path == "" {
				return nil, fmt.Errorf("environment %q declares a file artifact without a path; capture the pipeline again", id)
			}
			if old, ok := files[f.Path]; ok && old.SHA256 != f.SHA256 {
				if old.SHA256 != "" && f.SHA256 != "" {
					return nil, fmt.Errorf("file artifact %s is declared with two sha256 digests (%s, %s)", f.Path, old.SHA256, f.SHA256)
				}
				if f.SHA256 == "" {
					f = old
				}
			}
			files[f.Path] = f
		}
	}
	return files, nil
}

// ResolveFile returns the declared file for a file artifact of the set.
func (fs Files) ResolveFile(a *pipepb.ArtifactInformation) (File, error) {
	if a.GetTypeUrn() != FileArtifactURN {
		return File{}, fmt.Errorf("job server requested an artifact of type %q; only %s artifacts are served from this machine", a.GetTypeUrn(), FileArtifactURN)
	}
	f, err := FilePayload(a)
	if err != nil {
		return File{}, err
	}
	declared, ok := fs[f.Path]
	if !ok {
		return File{}, fmt.Errorf("job server requested file %s, which the pipeline does not declare; refusing to send it", f.Path)
	}
	return declared, nil
}

// Verify checks that every file of the set exists and, where a digest is
// declared, still has that content. It reads each file once, streaming.
func (fs Files) Verify(ctx context.Context) error {
	paths := make([]string, 0, len(fs))
	for p := range fs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := fs[p]
		sum, _, err := FileSHA256(ctx, f.Path)
		if err != nil {
			return err
		}
		if f.SHA256 != "" && sum != f.SHA256 {
			return &MismatchError{Path: f.Path, Want: f.SHA256, Got: sum}
		}
	}
	return nil
}

// MismatchError reports a file whose content differs from its declared
// sha256, typically because it was rebuilt after the pipeline was captured.
type MismatchError struct {
	Path      string
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("artifact %s changed after the pipeline was captured (sha256 %s, declared %s); capture the pipeline again", e.Path, short(e.Got), short(e.Want))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// FilePayload decodes the ArtifactFilePayload of a file artifact.
func FilePayload(a *pipepb.ArtifactInformation) (File, error) {
	var pl pipepb.ArtifactFilePayload
	if err := proto.Unmarshal(a.GetTypePayload(), &pl); err != nil {
		return File{}, fmt.Errorf("decoding file artifact payload: %w", err)
	}
	return File{Path: pl.GetPath(), SHA256: pl.GetSha256()}, nil
}

// FileArtifact builds a file artifact with the given role.
func FileArtifact(f File, roleURN string) *pipepb.ArtifactInformation {
	pl, err := proto.Marshal(&pipepb.ArtifactFilePayload{Path: f.Path, Sha256: f.SHA256})
	if err != nil {
		// Marshalling two strings cannot fail.
		panic(err)
	}
	return &pipepb.ArtifactInformation{TypeUrn: FileArtifactURN, TypePayload: pl, RoleUrn: roleURN}
}

// FileSHA256 streams a file through sha256 and returns the hex digest and the
// number of bytes read. The digest is remembered for the file's current
// state, so staging the unchanged file later in this process need not hash
// it again.
func FileSHA256(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("opening artifact: %w", err)
	}
	defer f.Close()
	started := time.Now()
	before, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("opening artifact: %w", err)
	}
	h := sha256.New()
	buf := make([]byte, hashReadChunkSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, err := f.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", n, fmt.Errorf("reading artifact %s: %w", path, err)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if after, err := f.Stat(); err == nil && sameState(before, after) && n == before.Size() &&
		before.ModTime().Before(started.Add(-modTimeCutoff)) {
		verified.Store(path, verifiedFile{info: before, sum: sum})
	}
	return sum, n, nil
}

// modTimeCutoff keeps digests of recently modified files out of the cache: a
// write landing within the file system's timestamp granularity of the one
// before it leaves the modification time unchanged. cmd/go trusts file
// modification times on the same terms.
const modTimeCutoff = 2 * time.Second

// verified maps a path to the digest FileSHA256 computed and the file's
// state at the time.
var verified sync.Map

type verifiedFile struct {
	info os.FileInfo
	sum  string
}

// verifiedSum returns the remembered digest of path if the open file st
// describes is still in the state it was hashed in.
func verifiedSum(path string, st os.FileInfo) (string, bool) {
	v, ok := verified.Load(path)
	if !ok {
		return "", false
	}
	vf := v.(verifiedFile)
	if !sameState(vf.info, st) {
		return "", false
	}
	return vf.sum, true
}

// sameState reports whether a and b describe the same file with the same
// size and modification time; rebuilding a binary replaces it or rewrites
// it, which changes one of them.
func sameState(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

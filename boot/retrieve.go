package boot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
)

// stagedArtifact is an artifact retrieved from the runner into a file.
type stagedArtifact struct {
	info   *pipepb.ArtifactInformation
	path   string
	sha256 string // as declared and checked; empty if none was declared
}

// retrieveAll retrieves the artifacts from the runner's retrieval service
// into dir, each checked against the sha256 its payload declares. Each file
// is written under a fresh temporary name and renamed into place once
// checked, so a file or hard link already in dir is never written through
// and no partial file is left under a staged name. With withWorker, one of
// the artifacts is the worker binary, which must declare a sha256 unless
// allowUnverified.
func retrieveAll(ctx context.Context, endpoint, id string, deps []*pipepb.ArtifactInformation, withWorker bool, dir string, allowUnverified bool, maxBytes int64, logger *slog.Logger) ([]stagedArtifact, error) {
	conn, err := beam.DialRunner(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to artifact service %s: %w", endpoint, err)
	}
	defer conn.Close()
	client := jobpb.NewArtifactRetrievalServiceClient(conn)
	ctx = beam.WithWorkerID(ctx, id)

	arts := deps
	resp, err := client.ResolveArtifacts(ctx, &jobpb.ResolveArtifactsRequest{Artifacts: deps}, grpc.WaitForReady(true))
	switch {
	case status.Code(err) == codes.Unimplemented:
		// A runner that cannot resolve artifacts serves them as declared.
	case err != nil:
		return nil, fmt.Errorf("resolve artifacts at %s: %w", endpoint, err)
	default:
		arts = resp.GetReplacements()
	}
	names, err := stagedNames(arts)
	if err != nil {
		return nil, err
	}
	if withWorker {
		worker, err := beam.WorkerArtifact(arts)
		if err != nil {
			return nil, err
		}
		if want, err := beam.DeclaredSHA256(arts[worker]); err != nil {
			return nil, err
		} else if want == "" {
			if !allowUnverified {
				return nil, problem.Usagef("submit the pipeline with the worker's digest, or set {AllowUnverified} to run it unchecked",
					"the worker binary %s declares no sha256, so what would run cannot be checked", names[worker])
			}
			logger.Warn("running a worker binary that declares no sha256: its content is not checked", "artifact", names[worker])
		}
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	// The root keeps every file inside dir, whatever the names and
	// whatever is already there.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open staging directory: %w", err)
	}
	defer root.Close()
	out := make([]stagedArtifact, len(arts))
	budget := &byteBudget{left: maxBytes, max: maxBytes}
	for i, a := range arts {
		want, err := beam.DeclaredSHA256(a)
		if err != nil {
			return nil, err
		}
		if err := retrieve(ctx, client, a, root, names[i], want, budget); err != nil {
			return nil, fmt.Errorf("retrieve artifact %s from %s: %w", names[i], endpoint, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(names[i]))
		if want == "" {
			logger.Debug("staged artifact declares no sha256, not checked", "path", p)
		}
		logger.Debug("retrieved artifact", "path", p, "sha256", want)
		out[i] = stagedArtifact{info: a, path: p, sha256: want}
	}
	return out, nil
}

// stagedNames chooses where under the staging directory each artifact
// goes: the name the runner gives it (staging_to role), else the base name
// of its file or URL. Names leaving the directory are refused: the runner
// may not be trusted with this machine's files.
func stagedNames(arts []*pipepb.ArtifactInformation) ([]string, error) {
	names := make([]string, len(arts))
	given := make([]bool, len(arts))
	taken := map[string]bool{}
	for i, a := range arts {
		name, isGiven, err := stagedName(a)
		if err != nil {
			return nil, err
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return nil, fmt.Errorf("the runner asks to stage an artifact as %q, outside the staging directory: refusing it", name)
		}
		names[i], given[i] = path.Clean(name), isGiven
		if isGiven {
			if taken[names[i]] {
				return nil, fmt.Errorf("the runner asks to stage two artifacts as %q", names[i])
			}
			taken[names[i]] = true
		}
	}
	// Names made up here must not take one the runner gives, whatever
	// order the artifacts come in.
	for i := range arts {
		if given[i] {
			continue
		}
		name := names[i]
		for n := 1; taken[name] || strings.HasPrefix(path.Base(name), partialPrefix); n++ {
			name = path.Join(path.Dir(names[i]), fmt.Sprintf("%d-%s", n, path.Base(names[i])))
		}
		taken[name] = true
		names[i] = name
	}
	return names, nil
}

func stagedName(a *pipepb.ArtifactInformation) (name string, given bool, err error) {
	switch {
	case a.GetRoleUrn() == beam.StagingToRoleURN:
		var role pipepb.ArtifactStagingToRolePayload
		if err := proto.Unmarshal(a.GetRolePayload(), &role); err != nil {
			return "", false, fmt.Errorf("decode staging_to role: %w", err)
		}
		return role.GetStagedName(), true, nil
	case a.GetTypeUrn() == beam.FileArtifactURN:
		f, err := beam.FilePayload(a)
		return path.Base(filepath.ToSlash(f.Path)), false, err
	case a.GetTypeUrn() == beam.URLArtifactURN:
		var u pipepb.ArtifactUrlPayload
		if err := proto.Unmarshal(a.GetTypePayload(), &u); err != nil {
			return "", false, fmt.Errorf("decode url artifact: %w", err)
		}
		return path.Base(u.GetUrl()), false, nil
	}
	return "", false, fmt.Errorf("cannot stage an artifact of type %q with role %q", a.GetTypeUrn(), a.GetRoleUrn())
}

// byteBudget bounds the bytes a worker's artifacts may take; max 0 is no
// bound.
type byteBudget struct{ left, max int64 }

func (b *byteBudget) spend(n int) error {
	if b.max <= 0 {
		return nil
	}
	if b.left -= int64(n); b.left < 0 {
		return problem.Usagef("raise {MaxArtifactBytes} if the job needs them", "the worker's artifacts exceed %d bytes", b.max)
	}
	return nil
}

// partialPrefix starts the names of files being retrieved.
const partialPrefix = ".partial-"

// retrieve streams one artifact to a new file under root, checks it
// against want (if any) and renames it to name.
func retrieve(ctx context.Context, client jobpb.ArtifactRetrievalServiceClient, a *pipepb.ArtifactInformation, root *os.Root, name, want string, budget *byteBudget) (err error) {
	stream, err := client.GetArtifact(ctx, &jobpb.GetArtifactRequest{Artifact: a}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	if err := root.MkdirAll(path.Dir(name), 0o700); err != nil {
		return err
	}
	tmp, f, err := createPartial(root, path.Dir(name))
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	h := digest.New()
	w := io.MultiWriter(f, h)
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := budget.spend(len(chunk.GetData())); err != nil {
			return err
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if got := h.Hex(); want != "" && got != want {
		return fmt.Errorf("it does not match its sha256 %s (it has %s): submit the job again", want, got)
	}
	return root.Rename(tmp, name)
}

// createPartial creates a new file, under a name nobody else uses, in dir
// under root.
func createPartial(root *os.Root, dir string) (string, *os.File, error) {
	var b [8]byte
	for range 10 {
		if _, err := rand.Read(b[:]); err != nil {
			return "", nil, err
		}
		name := path.Join(dir, partialPrefix+hex.EncodeToString(b[:]))
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
		if err == nil {
			return name, f, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", nil, err
		}
	}
	return "", nil, errors.New("no free temporary name in the staging directory")
}

// copyExecutable copies src to a new file dst, with execute permission,
// checking the copy against want as it goes: the staging directory may be
// on a volume mounted noexec, or writable by others, and the copy is what
// runs.
func copyExecutable(src, dst, want string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return err
	}
	h := digest.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return err
	}
	if got := h.Hex(); want != "" && got != want {
		os.Remove(dst)
		return fmt.Errorf("%s changed after it was retrieved (sha256 %s, want %s)", src, digest.Short(got), digest.Short(want))
	}
	return nil
}

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
	"fmt"
	"sort"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
)

// File is a local file a pipeline declares as an artifact.
type File = beam.File

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
			if dep.GetTypeUrn() != beam.FileArtifactURN {
				continue
			}
			f, err := beam.FilePayload(dep)
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
	if a.GetTypeUrn() != beam.FileArtifactURN {
		return File{}, fmt.Errorf("job server requested an artifact of type %q; only %s artifacts are served from this machine", a.GetTypeUrn(), beam.FileArtifactURN)
	}
	f, err := beam.FilePayload(a)
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
// declared, still has that content. Files digests knows in their current
// state are not read again.
func (fs Files) Verify(ctx context.Context, digests *digest.Cache) error {
	paths := make([]string, 0, len(fs))
	for p := range fs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := fs[p]
		sum, err := digests.Sum(ctx, f.Path)
		if err != nil {
			return fmt.Errorf("opening artifact: %w", err)
		}
		if f.SHA256 != "" && sum.SHA256 != f.SHA256 {
			return &MismatchError{Path: f.Path, Want: f.SHA256, Got: sum.SHA256}
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
	return fmt.Sprintf("artifact %s changed after the pipeline was captured (sha256 %s, declared %s); capture the pipeline again", e.Path, digest.Short(e.Got), digest.Short(e.Want))
}

package loopback

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
)

// LocalParams are the external environment parameters that make a pool
// using LocalFiles run the worker at path, after checking it against sha256.
// A runner in the submitter's process (the embedded runner) would otherwise
// copy the whole binary into its memory to stage it.
func LocalParams(path, sha256 string) map[string]string {
	return map[string]string{boot.ParamWorkerBinary: path, boot.ParamWorkerSHA256: sha256}
}

// LocalFiles finds the worker binary on this machine: the one the
// parameters name, which must match their sha256; else the file the worker
// artifact names, if it is here with the declared sha256. It returns "" to
// have the binary retrieved from the runner. Only a pool serving the
// machine the job was submitted from should use it.
func LocalFiles(digests *digest.Cache, logger *slog.Logger) boot.LocalBinary {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, c boot.Contract, deps []*pipepb.ArtifactInformation) (*os.File, error) {
		if path := c.Params[boot.ParamWorkerBinary]; path != "" {
			want := c.Params[boot.ParamWorkerSHA256]
			if want == "" {
				return nil, fmt.Errorf("worker binary %s comes without its sha256 (%s): submit it with both parameters", path, boot.ParamWorkerSHA256)
			}
			return boot.OpenVerified(ctx, digests, path, want)
		}
		if len(deps) == 0 {
			return nil, nil
		}
		i, err := beam.WorkerArtifact(deps)
		if err != nil || deps[i].GetTypeUrn() != beam.FileArtifactURN {
			return nil, nil
		}
		a, err := beam.FilePayload(deps[i])
		if err != nil || a.Path == "" || a.SHA256 == "" {
			return nil, nil
		}
		f, err := boot.OpenVerified(ctx, digests, a.Path, a.SHA256)
		if err != nil {
			logger.Debug("local worker binary unusable, fetching it from the runner", "path", a.Path, "reason", err)
			return nil, nil
		}
		logger.Debug("using local worker binary", "path", a.Path)
		return f, nil
	}
}

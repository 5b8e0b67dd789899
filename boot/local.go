package boot

import (
	"context"
	"fmt"
	"log/slog"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
)

// Environment parameters that hand a pool a worker binary on its own
// machine directly. A runner in the submitter's process (the embedded
// runner) would otherwise copy the whole binary into its memory to stage it.
const (
	ParamWorkerBinary = "beamctl_worker_binary"
	ParamWorkerSHA256 = "beamctl_worker_sha256"
)

// LocalParams are the external environment parameters that make a pool
// using LocalFiles run the worker at path, after checking it against sha256.
func LocalParams(path, sha256 string) map[string]string {
	return map[string]string{ParamWorkerBinary: path, ParamWorkerSHA256: sha256}
}

// LocalFiles finds the worker binary on this machine: the one the
// parameters name, which must match their sha256; else the file the worker
// artifact names, if it is here with the declared sha256. It returns "" to
// have the binary retrieved from the runner. Only a pool serving the
// machine the job was submitted from should use it.
func LocalFiles(digests *digest.Cache, logger *slog.Logger) LocalBinary {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, c Contract, deps []*pipepb.ArtifactInformation) (string, error) {
		if path := c.Params[ParamWorkerBinary]; path != "" {
			want := c.Params[ParamWorkerSHA256]
			if want == "" {
				return "", fmt.Errorf("worker binary %s comes without its sha256 (%s): submit it with both parameters", path, ParamWorkerSHA256)
			}
			if err := verify(ctx, digests, path, want); err != nil {
				return "", err
			}
			return path, nil
		}
		if len(deps) == 0 {
			return "", nil
		}
		i, err := beam.WorkerArtifact(deps)
		if err != nil || deps[i].GetTypeUrn() != beam.FileArtifactURN {
			return "", nil
		}
		f, err := beam.FilePayload(deps[i])
		if err != nil || f.Path == "" {
			return "", nil
		}
		if err := verify(ctx, digests, f.Path, f.SHA256); err != nil {
			logger.Debug("local worker binary unusable, fetching it from the runner", "path", f.Path, "reason", err)
			return "", nil
		}
		logger.Debug("using local worker binary", "path", f.Path)
		return f.Path, nil
	}
}

func verify(ctx context.Context, digests *digest.Cache, path, want string) error {
	if want == "" {
		_, err := digests.Sum(ctx, path)
		return err
	}
	err := digests.Verify(ctx, path, want)
	if _, ok := err.(*digest.MismatchError); ok {
		return fmt.Errorf("worker binary %s does not match the pipeline's sha256 %s: rebuild the pipeline and submit it again", path, digest.Short(want))
	}
	return err
}

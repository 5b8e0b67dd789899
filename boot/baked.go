package boot

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
)

// Environment variables of a worker image's configuration that name the
// worker binary built into the image and its sha256.
const (
	EnvBakedWorker       = "BEAMCTL_WORKER"
	EnvBakedWorkerSHA256 = "BEAMCTL_WORKER_SHA256"
)

// Baked is a worker binary built into the image boot runs in, so that a job
// need stage none.
type Baked struct {
	Path   string
	SHA256 string
}

// BakedFromEnv reads the image's worker from env (as os.Environ gives it);
// nil when the image has none.
func BakedFromEnv(env []string) (*Baked, error) {
	var b Baked
	for _, kv := range env {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case EnvBakedWorker:
			b.Path = v
		case EnvBakedWorkerSHA256:
			b.SHA256 = v
		}
	}
	switch {
	case b.Path == "" && b.SHA256 == "":
		return nil, nil
	case b.Path == "" || !digest.Valid(b.SHA256):
		return nil, fmt.Errorf("the image names its worker binary incompletely (%s=%q, %s=%q): build the image again with beamctl stage",
			EnvBakedWorker, b.Path, EnvBakedWorkerSHA256, b.SHA256)
	}
	return &b, nil
}

// bakedWorker decides whether the image's worker runs: when the job stages
// no worker, or stages this very binary (nothing is then fetched). A job
// that stages another worker wins; it returns nil then. want, if set, is
// the sha256 the job's environment expects, and an image whose worker
// differs is refused: a worker pool left running an older image would
// otherwise run old code for a new job. rest are the job's other artifacts,
// still to retrieve.
func (cfg config) bakedWorker(ctx context.Context, want string, deps []*pipepb.ArtifactInformation) (*os.File, []*pipepb.ArtifactInformation, error) {
	b := cfg.baked
	rest := deps
	if len(deps) > 0 {
		// Only an artifact declared as the Go worker displaces the image's:
		// a lone artifact without a role is some other file of the job.
		if i := slices.IndexFunc(deps, beam.IsGoWorker); i >= 0 {
			staged, err := beam.DeclaredSHA256(deps[i])
			if err != nil {
				return nil, nil, err
			}
			if staged != b.SHA256 {
				cfg.logger.Info("the job stages its own worker binary: running it, not the image's",
					"image_worker_sha256", digest.Short(b.SHA256), "job_worker_sha256", digest.Short(staged))
				return nil, nil, nil
			}
			rest = slices.Delete(slices.Clone(deps), i, i+1)
		}
	}
	if want != "" && want != b.SHA256 {
		return nil, nil, fmt.Errorf("the image's worker binary (sha256 %s) is not the job's (sha256 %s): this worker runs an image of another build of the pipeline; deploy the image the job was staged with",
			b.SHA256, want)
	}
	f, err := OpenVerified(ctx, digest.NewCache(), b.Path, b.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("the image's worker binary: %w", err)
	}
	cfg.logger.Info("running the image's worker binary", "path", b.Path, "sha256", digest.Short(b.SHA256))
	return f, rest, nil
}

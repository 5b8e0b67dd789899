// Package loopback serves a job's workers from this machine, the one the
// job was submitted from: a worker pool (Beam's BeamFnExternalWorkerPool)
// whose workers run the worker binary beamctl built, found on this machine
// rather than fetched back from the runner, in the user's directory, with
// their output on the user's terminal. It is what the embedded runner and
// the LOOPBACK environment use.
//
// How a worker process is started is a wrap.Wrapper: as it is, under
// qemu-user for another architecture (wrap.Emulated), or under a debugger.
package loopback

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/wrap"
)

// Options configure a local pool.
type Options struct {
	// Address to serve on; default "127.0.0.1:0". Beyond loopback only with
	// Expose.
	Address string
	// Expose allows an Address beyond loopback and requests from other
	// machines (boot.PoolOptions.Expose).
	Expose bool
	// Dir is the workers' working directory: the user's, so relative paths
	// in pipeline options mean to the workers what they meant to the
	// launcher.
	Dir string
	// Output receives the workers' output, each line prefixed with the
	// worker's name; nil discards it.
	Output io.Writer
	// Logger receives the pool's progress; nil discards it.
	Logger *slog.Logger
	// Wrapper says how worker processes start; default wrap.Emulated.
	Wrapper wrap.Wrapper
	// Digests knows the digests of files this run has hashed or built; a
	// worker binary it knows in its current state is not hashed again.
	// Default: a new cache.
	Digests *digest.Cache
	// StopGrace is how long a worker may take to exit after SIGTERM; 0 is
	// boot's default.
	StopGrace time.Duration
	// Worker, if set, is the binary every worker runs, whatever its job
	// declares: a test binary serves as the worker of the pipelines its
	// tests submit, which declare no usable worker of their own.
	Worker beam.File
}

// Start serves a pool for jobs submitted from this machine. Workers it
// cannot start, and workers that exit before the runner stops them, are
// reported on Failures, never answered as errors: a runner in this process
// (prism) treats an error answer as fatal to the whole process.
func Start(ctx context.Context, o Options) (*boot.Pool, error) {
	if o.Digests == nil {
		o.Digests = digest.NewCache()
	}
	local := LocalFiles(o.Digests, o.Logger)
	if w := o.Worker; w.Path != "" {
		local = func(ctx context.Context, _ boot.Contract, _ []*pipepb.ArtifactInformation) (*os.File, error) {
			return boot.OpenVerified(ctx, o.Digests, w.Path, w.SHA256)
		}
	}
	return boot.StartPool(ctx, boot.PoolOptions{
		Address:     o.Address,
		Logger:      o.Logger,
		Output:      o.Output,
		Wrapper:     o.Wrapper,
		Dir:         o.Dir,
		Expose:      o.Expose,
		StopGrace:   o.StopGrace,
		LocalBinary: local,
	})
}

// Check says whether this machine can run workers built for goos/goarch,
// and how to make it able when it cannot.
func Check(goos, goarch string) error {
	if _, err := wrap.Emulator(goos, goarch); err != nil {
		return &problem.Error{Reason: err.Error(), Usage: true, Err: err}
	}
	return nil
}

package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/beamctl/beamctl/internal/proc"
	"github.com/beamctl/beamctl/wrap"
)

// BootOptions configure Boot.
type BootOptions struct {
	// Contract is what the runner passed: the worker id and at least the
	// provision endpoint. Of Params, only ParamWorkerSHA256 is used: the
	// worker the job expects.
	Contract
	// Baked is the worker binary of the image boot runs in, if any: it runs
	// unless the job stages another worker.
	Baked *Baked
	// SemiPersistDir is the worker's semi-persistent directory; artifacts
	// are retrieved into its "staged" directory. Default: a new temporary
	// directory, removed when boot ends, even when it is killed.
	SemiPersistDir string
	// Logger receives the boot's progress; nil discards it.
	Logger *slog.Logger
	// Stdout and Stderr receive the worker's output; nil discards it.
	Stdout, Stderr io.Writer
	// Wrapper says how the worker process is started; default
	// wrap.Emulated.
	Wrapper wrap.Wrapper
	// Signals are passed on to the worker while it runs; one that arrives
	// before the worker starts abandons the boot.
	Signals <-chan os.Signal
	// StopGrace is how long the worker may take to exit after SIGTERM when
	// ctx is cancelled, before it is killed; default 5s.
	StopGrace time.Duration
	// BootTimeout bounds provisioning and retrieving artifacts; default 2m.
	BootTimeout time.Duration
	// AllowUnverified runs a worker binary that declares no sha256, with a
	// warning; by default it is refused.
	AllowUnverified bool
	// MaxArtifactBytes bounds the bytes of the worker's artifacts, so a
	// runner cannot fill the disk; 0 is no bound.
	MaxArtifactBytes int64
}

// ErrBootInterrupted is returned by Boot when a signal arrives before the
// worker starts.
var ErrBootInterrupted = errors.New("interrupted before the worker started")

// Boot performs the Beam container contract for one worker and runs it in
// the foreground until it exits, as a container's entrypoint does: it asks
// the provision service for the pipeline options and artifacts, retrieves
// the artifacts into SemiPersistDir/staged (checking their sha256) and
// executes the worker binary (a copy of it, when the runner chose
// SemiPersistDir) with the flags and environment the Go SDK harness expects.
//
// It returns the worker's exit code, 128+n when signal n ended it; an error
// means the worker could not be started. Cancelling ctx stops the worker:
// SIGTERM, then SIGKILL after StopGrace.
func Boot(ctx context.Context, opts BootOptions) (int, error) {
	switch {
	case opts.ID == "":
		return 0, errors.New("no worker id: the runner must pass the worker's id")
	case opts.ProvisionEndpoint == "":
		return 0, errors.New("no provision endpoint: the runner must pass its provision service's address")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Wrapper == nil {
		opts.Wrapper = wrap.Emulated
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = 2 * time.Minute
	}

	// One directory holds what boot creates (unless the runner gives a
	// semi-persistent directory): the worker's copy of its binary, since
	// the semi-persistent directory may be mounted noexec, and the rest.
	sweep(logger)
	td, err := proc.MkdirTemp(bootDirPrefix)
	if err != nil {
		return 0, fmt.Errorf("create the worker's directory: %w", err)
	}
	defer td.Release()
	own := td.Path
	// Runners end a PROCESS environment's boot with SIGKILL (prism does),
	// which leaves no chance to clean up: a guard process does it once boot
	// is gone, however it ends, and kills what the worker left running.
	guard, err := proc.StartGuard(own)
	if err != nil {
		logger.Warn("the worker's files stay behind if boot is killed", "dir", own, "error", err)
		defer os.RemoveAll(own)
	} else {
		defer guard.Close()
	}
	dir, binDir := opts.SemiPersistDir, ""
	if dir == "" {
		// The staged binary is in boot's own directory: it runs from there.
		dir = filepath.Join(own, "semi-persist")
	} else {
		// The runner's directory may be mounted noexec: the worker runs
		// from a copy in boot's own.
		binDir = filepath.Join(own, "bin")
		if err := os.Mkdir(binDir, 0o700); err != nil {
			return 0, fmt.Errorf("create worker binary directory: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create semi-persistent directory: %w", err)
	}

	l, err := prepareInterruptibly(ctx, opts, config{
		logger:  logger,
		wrapper: opts.Wrapper,
		dir:     dir,
		binDir:  binDir,

		allowUnverified:  opts.AllowUnverified,
		maxArtifactBytes: opts.MaxArtifactBytes,
		baked:            opts.Baked,
	})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	res, err := l.Run(ctx, "", opts.Stdout, opts.Stderr, proc.Options{Signals: opts.Signals, Grace: opts.StopGrace, Logger: logger, Guard: guard})
	if err != nil {
		return 0, fmt.Errorf("worker: %w", err)
	}
	var exit *exec.ExitError
	if res.Err != nil && !errors.As(res.Err, &exit) {
		return 0, fmt.Errorf("worker: %w", res.Err)
	}
	code := res.Code()
	logger.Debug("worker exited", "code", code)
	return code, nil
}

// prepareInterruptibly is prepare, abandoned when a signal arrives.
func prepareInterruptibly(ctx context.Context, opts BootOptions, cfg config) (*wrap.Launch, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.BootTimeout)
	defer cancel()
	ctx, interrupt := context.WithCancelCause(ctx)
	prepared := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case s := <-opts.Signals:
			interrupt(fmt.Errorf("%w (%v)", ErrBootInterrupted, s))
		case <-prepared:
		}
	})
	l, err := prepare(ctx, opts.Contract, cfg)
	close(prepared)
	wg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, ErrBootInterrupted) {
		return nil, cause
	}
	return l, err
}

// Prefixes of the temporary directories boot and pools make.
const (
	bootDirPrefix = "beamctl-boot-"
	poolDirPrefix = "beamctl-workers-"
)

// sweep removes what boots and pools killed together with their guards
// left behind (proc.Sweep): the disk must not fill up over time whatever
// happens to the processes.
func sweep(logger *slog.Logger) {
	for _, prefix := range []string{bootDirPrefix, poolDirPrefix} {
		for _, dir := range proc.Sweep(prefix) {
			logger.Info("removed a directory its dead owner left behind", "dir", dir)
		}
	}
}

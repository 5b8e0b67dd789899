package boot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/beamctl/beamctl/internal/proc"
	"github.com/beamctl/beamctl/wrap"
)

// WorkerError is a worker that could not be started or that exited before
// the runner stopped it.
type WorkerError struct {
	// Worker is the name prefixing the worker's output, e.g. "worker-1".
	Worker string
	// ID is the runner's id for the worker.
	ID  string
	Err error
	// Output holds the worker's last lines of output, oldest first.
	Output []string
}

func (e *WorkerError) Error() string {
	var b strings.Builder
	b.WriteString("worker ")
	if e.Worker != "" && e.Worker != e.ID {
		fmt.Fprintf(&b, "%s (%s)", e.Worker, e.ID)
	} else {
		b.WriteString(e.ID)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	for i := len(e.Output) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(e.Output[i]); l != "" {
			fmt.Fprintf(&b, "; last output: %q", l)
			break
		}
	}
	return b.String()
}

func (e *WorkerError) Unwrap() error { return e.Err }

// worker is one StartWorker request, from provisioning to reaping.
type worker struct {
	c    Contract
	name string // labels the worker's output and failures
	dir  string // the worker's own directory
	out  *lineWriter

	ctx      context.Context // cancelled when the worker is to stop
	cancel   context.CancelFunc
	stopping atomic.Bool
	done     chan struct{} // closed once the worker is reaped and forgotten
}

// stop asks the worker to stop; an exit after this is not a failure.
func (w *worker) stop() {
	w.stopping.Store(true)
	w.cancel()
}

func (w *worker) failure(err error) *WorkerError {
	return &WorkerError{Worker: w.name, ID: w.c.ID, Err: err, Output: w.out.Tail()}
}

// run boots the worker and supervises it until it exits or is stopped. It
// returns the failure to report, if any.
func (p *Pool) run(w *worker) *WorkerError {
	defer w.cancel()
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return w.failure(fmt.Errorf("create the worker's directory: %w", err))
	}
	defer os.RemoveAll(w.dir)

	logger := p.logger.With("worker", w.name, "id", w.c.ID)
	l, err := p.launch(w, logger)
	if err != nil {
		if w.stopping.Load() {
			return nil
		}
		return w.failure(err)
	}
	defer l.Close()
	res, err := l.Run(w.ctx, cmp.Or(p.opts.Dir, w.dir), w.out, w.out, proc.Options{Grace: p.opts.StopGrace, Logger: logger, Guard: p.guard})
	w.out.Flush()
	if err != nil {
		return w.failure(err)
	}
	stopped := res.Stopped
	err = res.Err
	if stopped || w.stopping.Load() {
		logger.Debug("worker stopped")
		return nil
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		err = errors.New("exited before the job stopped it")
	case errors.As(err, &exit):
		err = fmt.Errorf("exited before the job stopped it: %w", err)
	}
	return w.failure(err)
}

// launch performs the container contract in this process, or leaves it to
// the pool's boot command.
func (p *Pool) launch(w *worker, logger *slog.Logger) (*wrap.Launch, error) {
	if len(p.opts.BootCommand) > 0 {
		l := &wrap.Launch{ID: w.c.ID, Argv: append(slices.Clone(p.opts.BootCommand), w.c.Args(w.dir)...)}
		if p.opts.BootArgs != nil {
			args, release, err := p.opts.BootArgs(w.c)
			if err != nil {
				return nil, err
			}
			l.Argv = append(l.Argv, args...)
			if release != nil {
				l.Cleanup = append(l.Cleanup, release)
			}
		}
		return l, nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, p.opts.BootTimeout)
	defer cancel()
	return prepare(ctx, w.c, config{
		logger:  logger,
		wrapper: p.opts.Wrapper,
		local:   p.opts.LocalBinary,
		dir:     w.dir,

		allowUnverified:  p.opts.AllowUnverified,
		maxArtifactBytes: p.opts.MaxArtifactBytes,
	})
}

// A runner such as prism treats an error answer to StartWorker as fatal to
// itself, so by default StartWorker always succeeds: a worker that cannot
// be started, or that exits before the runner stops it, is reported on
// Failures. A pool serving runners elsewhere may answer errors instead
// (PoolOptions.AnswerErrors).

package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/internal/proc"
	"github.com/beamctl/beamctl/wrap"
)

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Address to serve the worker pool on; default "127.0.0.1:0".
	Address string
	// Logger receives the pool's progress; nil discards it.
	Logger *slog.Logger
	// Output receives the workers' stdout and stderr, line by line, each line
	// prefixed with the worker's name, as in "[worker-1] ..."; nil discards it.
	Output io.Writer
	// Wrapper says how worker processes are started; default
	// wrap.Emulated.
	Wrapper wrap.Wrapper
	// WorkDir holds one directory per worker (its semi-persistent directory,
	// options file and, when fetched, its binary); default a new temporary
	// directory, removed by Close.
	WorkDir string
	// Dir is the workers' working directory; default each worker's own
	// directory under WorkDir. Set it to the user's directory so relative
	// paths in pipeline options mean to the workers what they meant to the
	// launcher.
	Dir string
	// StopGrace is how long a worker may take to exit after SIGTERM before it
	// is killed; default 5s.
	StopGrace time.Duration
	// TailLines is how many of a worker's last output lines a failure
	// carries; default 50.
	TailLines int
	// BootTimeout bounds provisioning a worker and fetching its binary;
	// default 2m.
	BootTimeout time.Duration

	// LocalBinary, if set, may find a worker's binary on this machine
	// instead of retrieving it from the runner: for a pool serving the
	// machine the job was submitted from.
	LocalBinary LocalBinary
	// BootCommand, if set, starts each worker by running this command with
	// the contract's flags (--id, --provision_endpoint, ...,
	// --semi_persist_dir), as "beamctl boot" takes them, instead of
	// performing the contract in this process.
	BootCommand []string
	// BootArgs, if set, gives each worker's boot command more arguments,
	// such as the address its debugger is to listen on; release, if not
	// nil, is called once that worker has exited.
	BootArgs func(c Contract) (args []string, release func(), err error)
	// AnswerErrors answers a StartWorker the pool cannot take (closed,
	// duplicate id, no provision endpoint, MaxWorkers reached) with an
	// error instead of reporting it on Failures. Only for runners that
	// survive such an answer: prism panics on it.
	AnswerErrors bool
	// MaxWorkers bounds how many workers run or boot at once, so a flood of
	// requests costs bounded memory, file descriptors and processes; 0 is
	// DefaultMaxWorkers.
	MaxWorkers int
	// LabelByID labels each worker's output with the runner's worker id
	// instead of "worker-N".
	LabelByID bool
	// AllowOtherUsers accepts requests from processes of any user of this
	// machine, for a pool whose runner runs as another user (a sidecar
	// container). By default only the pool's own user and root may start
	// workers.
	AllowOtherUsers bool
	// Expose allows an Address beyond loopback, and requests from other
	// machines, which cannot be identified: anyone who reaches the pool can
	// then run programs as its user.
	Expose bool
	// AllowUnverified runs worker binaries that declare no sha256, with a
	// warning; by default they are refused.
	AllowUnverified bool
	// MaxArtifactBytes bounds the bytes of each worker's artifacts; 0 is no
	// bound.
	MaxArtifactBytes int64
}

// failureBuffer is how many failures wait for a reader before more are
// dropped (and logged).
const failureBuffer = 64

// Pool serves BeamFnExternalWorkerPool and supervises the workers it starts.
type Pool struct {
	fnpb.UnimplementedBeamFnExternalWorkerPoolServer

	opts     PoolOptions
	logger   *slog.Logger
	out      io.Writer
	outMu    sync.Mutex
	lis      net.Listener
	srv      *grpc.Server
	dir      string
	ownDir   bool
	guard    *proc.Guard
	tempDir  *proc.TempDir
	root     context.Context
	cancel   context.CancelFunc
	failures chan error

	mu      sync.Mutex
	closed  bool
	seq     int
	workers map[string]*worker
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// DefaultMaxWorkers is four workers per CPU: a pipeline's workers each use
// several, and more than that only queue for the CPUs.
func DefaultMaxWorkers() int { return 4 * runtime.NumCPU() }

// StartPool listens on opts.Address and serves the worker pool until Close.
func StartPool(ctx context.Context, opts PoolOptions) (*Pool, error) {
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	if opts.Wrapper == nil {
		opts.Wrapper = wrap.Emulated
	}
	if opts.MaxWorkers <= 0 {
		opts.MaxWorkers = DefaultMaxWorkers()
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.TailLines <= 0 {
		opts.TailLines = 50
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = 2 * time.Minute
	}
	p := &Pool{
		opts:     opts,
		logger:   opts.Logger,
		out:      opts.Output,
		failures: make(chan error, failureBuffer),
		workers:  map[string]*worker{},
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.out == nil {
		p.out = io.Discard
	}

	if err := checkAddress(opts.Address, opts.Expose); err != nil {
		return nil, err
	}
	p.dir = opts.WorkDir
	if p.dir == "" {
		sweep(p.logger)
		td, err := proc.MkdirTemp(poolDirPrefix)
		if err != nil {
			return nil, fmt.Errorf("create worker directory: %w", err)
		}
		p.dir, p.ownDir, p.tempDir = td.Path, true, td
	} else if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create worker directory: %w", err)
	}
	// A pool killed outright cannot clean up: a guard process kills what its
	// workers left running and removes the directory it made.
	var own []string
	if p.ownDir {
		own = append(own, p.dir)
	}
	var err error
	if p.guard, err = proc.StartGuard(own...); err != nil {
		p.logger.Warn("the workers' processes and files may stay behind if the pool is killed", "dir", p.dir, "error", err)
	}

	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", opts.Address)
	if err != nil {
		p.removeDir()
		return nil, fmt.Errorf("worker pool cannot listen on %s: %w: choose another address", opts.Address, err)
	}
	p.lis = lis
	p.root, p.cancel = context.WithCancel(context.Background())
	p.srv = grpc.NewServer(grpc.Creds(newPeerCreds()), grpc.UnaryInterceptor(p.authorize))
	fnpb.RegisterBeamFnExternalWorkerPoolServer(p.srv, p)
	go func() {
		if err := p.srv.Serve(lis); err != nil {
			p.logger.Debug("worker pool stopped serving", "error", err)
		}
	}()
	p.logger.Debug("worker pool serving", "address", p.Address(), "dir", p.dir)
	return p, nil
}

// Address is the host:port the pool listens on.
func (p *Pool) Address() string { return p.lis.Addr().String() }

// Failures delivers a *WorkerError for each worker that could not be started
// or exited before the runner stopped it. It is never closed.
func (p *Pool) Failures() <-chan error { return p.failures }

// StartWorker starts a worker in the background. Problems are reported on
// Failures, or in the answer with PoolOptions.AnswerErrors.
func (p *Pool) StartWorker(_ context.Context, req *fnpb.StartWorkerRequest) (*fnpb.StartWorkerResponse, error) {
	c := contractOf(req)
	w, err := p.admit(c)
	if err != nil {
		if p.opts.AnswerErrors {
			p.logger.Warn("worker refused", "id", c.ID, "reason", err)
			return &fnpb.StartWorkerResponse{Error: err.Error()}, nil
		}
		p.fail(&WorkerError{ID: c.ID, Err: err})
		return &fnpb.StartWorkerResponse{}, nil
	}

	p.logger.Debug("starting worker", "worker", w.name, "id", c.ID)
	go func() {
		defer p.wg.Done()
		failure := p.run(w)
		p.forget(w)
		if failure != nil {
			p.fail(failure)
		}
		close(w.done)
	}()
	return &fnpb.StartWorkerResponse{}, nil
}

// admit registers a worker for c, or says why the pool cannot take it.
func (p *Pool) admit(c Contract) (*worker, error) {
	if p.opts.AnswerErrors && c.ProvisionEndpoint == "" {
		return nil, errors.New("the request has no provision endpoint: this worker pool serves runners that provision their workers")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, errors.New("the worker pool is closed")
	case p.workers[c.ID] != nil:
		return nil, errors.New("a worker with this id is already running")
	case len(p.workers) >= p.opts.MaxWorkers:
		return nil, fmt.Errorf("the worker pool already runs its maximum of %d workers", p.opts.MaxWorkers)
	}
	p.seq++
	dirName := fmt.Sprintf("worker-%d", p.seq)
	name := dirName
	if p.opts.LabelByID {
		name = c.ID
	}
	w := &worker{
		c:    c,
		name: name,
		dir:  filepath.Join(p.dir, dirName),
		out:  newLineWriter(name, p.out, &p.outMu, p.opts.TailLines),
		done: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(p.root)
	p.workers[c.ID] = w
	p.wg.Add(1)
	return w, nil
}

// StopWorker stops a worker and returns once it has been reaped. Unknown
// workers, such as one that already failed, are not an error.
func (p *Pool) StopWorker(ctx context.Context, req *fnpb.StopWorkerRequest) (*fnpb.StopWorkerResponse, error) {
	p.mu.Lock()
	w := p.workers[req.GetWorkerId()]
	p.mu.Unlock()
	if w == nil {
		return &fnpb.StopWorkerResponse{}, nil
	}
	p.logger.Debug("stopping worker", "worker", w.name, "id", w.c.ID)
	w.stop()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	return &fnpb.StopWorkerResponse{}, nil
}

func (p *Pool) forget(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.workers[w.c.ID] == w {
		delete(p.workers, w.c.ID)
	}
}

func (p *Pool) fail(err error) {
	p.logger.Debug("worker failed", "error", err)
	select {
	case p.failures <- err:
	default:
		p.logger.Warn("worker failure dropped: nobody reads the pool's failures", "error", err)
	}
}

// Close stops serving, terminates every worker (SIGTERM, then SIGKILL after
// the grace period), waits until all are reaped and removes the pool's
// directory if it created it. It is safe to call more than once.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		ws := make([]*worker, 0, len(p.workers))
		for _, w := range p.workers {
			ws = append(ws, w)
		}
		p.mu.Unlock()

		// Stop, not GracefulStop: a runner's StopWorker call in flight would
		// otherwise hold Close until that worker exits.
		p.srv.Stop()
		for _, w := range ws {
			w.stop()
		}
		p.cancel()
		p.wg.Wait()
		p.closeErr = p.removeDir()
		p.logger.Debug("worker pool closed", "address", p.Address())
	})
	return p.closeErr
}

func (p *Pool) removeDir() error {
	defer p.tempDir.Release()
	if p.guard != nil {
		if err := p.guard.Close(); err != nil {
			return fmt.Errorf("remove worker directory: %w", err)
		}
	}
	if !p.ownDir {
		return nil
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("remove worker directory: %w", err)
	}
	return nil
}

// StopWorkers stops the workers whose runner ids match, and returns once
// they have been reaped or ctx has ended. A worker stopped so is not a
// failure.
func (p *Pool) StopWorkers(ctx context.Context, match func(id string) bool) {
	p.mu.Lock()
	var ws []*worker
	for id, w := range p.workers {
		if match(id) {
			ws = append(ws, w)
		}
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			return
		}
	}
}

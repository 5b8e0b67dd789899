package loopback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	"google.golang.org/protobuf/encoding/protojson"
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
	if e.Worker != "" {
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
	id, name string
	out      *lineWriter

	ctx      context.Context // cancelled when the worker is to stop
	cancel   context.CancelFunc
	kill     context.Context // cancelled when the worker is to be killed
	killNow  context.CancelFunc
	stopping atomic.Bool
	done     chan struct{} // closed once the worker is reaped
}

func newWorker(parent context.Context, id, name string, out io.Writer, outMu *sync.Mutex, tail int) *worker {
	w := &worker{
		id:   id,
		name: name,
		out:  newLineWriter(name, out, outMu, tail),
		done: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(parent)
	// Killing is separate from stopping, so a stop gets its grace period.
	w.kill, w.killNow = context.WithCancel(context.Background())
	return w
}

// stop asks the worker to stop; an exit after this is not a failure.
func (w *worker) stop() {
	w.stopping.Store(true)
	w.cancel()
}

func (w *worker) failure(err error) *WorkerError {
	return &WorkerError{Worker: w.name, ID: w.id, Err: err, Output: w.out.Tail()}
}

// run boots the worker and supervises it until it exits or is stopped. It
// returns the failure to report, if any.
func (p *Pool) run(w *worker, req *fnpb.StartWorkerRequest) *WorkerError {
	defer close(w.done)
	defer w.cancel()
	defer w.killNow()

	dir := filepath.Join(p.dir, w.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return w.failure(fmt.Errorf("create the worker's directory: %w", err))
	}
	defer os.RemoveAll(dir)

	cmd, err := p.prepare(w, req, dir)
	if err != nil {
		if w.stopping.Load() {
			return nil
		}
		return w.failure(err)
	}
	return p.supervise(w, cmd)
}

// prepare performs the container contract up to the worker's command line.
func (p *Pool) prepare(w *worker, req *fnpb.StartWorkerRequest, dir string) (*exec.Cmd, error) {
	ctx, cancel := context.WithTimeout(w.ctx, p.opts.BootTimeout)
	defer cancel()

	info, err := provision(ctx, req.GetProvisionEndpoint().GetUrl(), w.id)
	if err != nil {
		return nil, err
	}
	control := firstNonEmpty(info.GetControlEndpoint().GetUrl(), req.GetControlEndpoint().GetUrl())
	logging := firstNonEmpty(info.GetLoggingEndpoint().GetUrl(), req.GetLoggingEndpoint().GetUrl())
	artifacts := firstNonEmpty(info.GetArtifactEndpoint().GetUrl(), req.GetArtifactEndpoint().GetUrl())
	if control == "" || logging == "" {
		return nil, errors.New("the runner gave no control or logging endpoint for the worker")
	}

	bin, err := p.localWorker(req.GetParams())
	if err == nil && bin == "" {
		bin, err = p.workerBinary(ctx, w, info.GetDependencies(), artifacts, dir)
	}
	if err != nil {
		return nil, err
	}
	argv, err := p.command(bin)
	if err != nil {
		return nil, err
	}

	opts := []byte("{}")
	if po := info.GetPipelineOptions(); po != nil {
		if opts, err = protojson.Marshal(po); err != nil {
			return nil, fmt.Errorf("encode pipeline options: %w", err)
		}
	}
	optsFile := filepath.Join(dir, "pipeline_options.json")
	if err := os.WriteFile(optsFile, opts, 0o600); err != nil {
		return nil, fmt.Errorf("write pipeline options: %w", err)
	}

	env := map[string]string{
		"PIPELINE_OPTIONS_FILE": optsFile,
		"RUNNER_CAPABILITIES":   strings.Join(info.GetRunnerCapabilities(), " "),
		"STATUS_ENDPOINT":       info.GetStatusEndpoint().GetUrl(),
	}
	argv = append(argv,
		"--worker=true",
		"--id="+w.id,
		"--logging_endpoint="+logging,
		"--control_endpoint="+control,
		"--semi_persist_dir="+dir,
	)

	cmd := exec.CommandContext(w.kill, argv[0], argv[1:]...)
	cmd.Dir = firstNonEmpty(p.opts.Dir, dir)
	cmd.Env = workerEnv(os.Environ(), env)
	cmd.Stdout = w.out
	cmd.Stderr = w.out
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// Output copying ends when every holder of the pipe has exited; a
	// grandchild keeping it open must not hold the pool.
	cmd.WaitDelay = time.Second
	return cmd, nil
}

// command is how to execute bin here: directly, or through an emulator
// when it is built for another platform.
func (p *Pool) command(bin string) ([]string, error) {
	goos, goarch, err := binaryPlatform(bin)
	switch {
	case errors.Is(err, errNotELF):
		// Scripts and binaries of this platform's own format run as they are.
		return []string{bin}, nil
	case err != nil:
		return nil, fmt.Errorf("inspect worker binary: %w", err)
	}
	emu, err := p.opts.Emulator(goos, goarch)
	if err != nil {
		return nil, err
	}
	return append(append([]string(nil), emu...), bin), nil
}

func workerEnv(base []string, set map[string]string) []string {
	env := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// supervise starts cmd and waits for it to exit, or stops it when asked.
func (p *Pool) supervise(w *worker, cmd *exec.Cmd) *WorkerError {
	// The kernel's parent-death signal fires when the thread that started
	// the child exits, not the process: keep this goroutine on its thread
	// for as long as the child lives.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if w.ctx.Err() != nil {
		return nil
	}
	if err := cmd.Start(); err != nil {
		if w.stopping.Load() {
			return nil
		}
		return w.failure(fmt.Errorf("start: %w", err))
	}
	pid := cmd.Process.Pid
	p.logger.Debug("worker started", "worker", w.name, "id", w.id, "pid", pid, "command", cmd.Args)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer killStragglers(pid)

	select {
	case err := <-exited:
		w.out.Flush()
		if w.stopping.Load() {
			return nil
		}
		if err == nil {
			err = errors.New("exited before the job stopped it")
		} else {
			err = fmt.Errorf("exited before the job stopped it: %w", err)
		}
		return w.failure(err)
	case <-w.ctx.Done():
	}

	termGroup(pid)
	grace := time.NewTimer(p.opts.StopGrace)
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		p.logger.Debug("worker ignored SIGTERM, killing it", "worker", w.name, "pid", pid)
		w.killNow()
		<-exited
	}
	w.out.Flush()
	p.logger.Debug("worker stopped", "worker", w.name, "pid", pid)
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

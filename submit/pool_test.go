package submit_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/container/tools"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/artifact"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/util/grpcx"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/submit"
	"google.golang.org/grpc"
)

// workerPool is a minimal BeamFnExternalWorkerPool for tests: for each
// worker it performs the Go container's boot steps with the SDK's own
// helpers (provision info, artifact retrieval with sha256 validation) and runs
// the retrieved worker binary. With idle set it accepts workers and starts
// nothing, leaving the job waiting.
type workerPool struct {
	fnpb.UnimplementedBeamFnExternalWorkerPoolServer
	t    *testing.T
	dir  string
	idle bool

	root   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// started is closed at the first StartWorker. Prism panics if the pool
	// is gone before it asks for a worker, so tests keep the pool until then.
	started     chan struct{}
	startedOnce sync.Once

	// watch, if set, is looked for in the workers' output; seen is closed
	// when it appears.
	watch    string
	seen     chan struct{}
	seenOnce sync.Once

	// addr is where the pool listens.
	addr string

	mu        sync.Mutex
	workers   map[string]context.CancelFunc
	errs      []error
	retrieved []string
}

// submitScratch submits wordcount to prism, reading and writing in a
// temporary directory (its counts are not checked), with its workers asked
// of a pool the test serves; an idle pool starts none.
func submitScratch(ctx context.Context, t *testing.T, idle bool, o submit.SubmitOptions) (*submit.Job, *capture.Captured, *workerPool) {
	t.Helper()
	dir := t.TempDir()
	c := captureWordcount(t, wcBin, filepath.Join(dir, "in"), filepath.Join(dir, "out"))
	pool := onPool(t, c, idle)
	job, err := submit.Submit(ctx, prism.Conn, c, o)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return job, c, pool
}

// onPool serves a worker pool on 127.0.0.1 and has the captured
// pipeline's Go environments ask it for workers.
func onPool(t *testing.T, c *capture.Captured, idle bool) *workerPool {
	t.Helper()
	return servePool(t, c, idle, "")
}

// onWatchedPool is onPool with a pool whose seen channel is closed when a
// worker writes watch.
func onWatchedPool(t *testing.T, c *capture.Captured, watch string) *workerPool {
	t.Helper()
	return servePool(t, c, false, watch)
}

func servePool(t *testing.T, c *capture.Captured, idle bool, watch string) *workerPool {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &workerPool{t: t, dir: t.TempDir(), idle: idle, workers: map[string]context.CancelFunc{}, started: make(chan struct{}),
		watch: watch, seen: make(chan struct{})}
	p.root, p.cancel = context.WithCancel(context.Background())
	srv := grpc.NewServer()
	fnpb.RegisterBeamFnExternalWorkerPoolServer(srv, p)
	go srv.Serve(lis)
	t.Cleanup(func() {
		srv.Stop()
		p.cancel()
		p.wg.Wait()
	})
	p.addr = lis.Addr().String()
	if err := beam.UseExternal(c.Pipeline, p.addr, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *workerPool) StartWorker(_ context.Context, req *fnpb.StartWorkerRequest) (*fnpb.StartWorkerResponse, error) {
	p.startedOnce.Do(func() { close(p.started) })
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithCancel(p.root)
	p.workers[req.GetWorkerId()] = cancel
	if p.idle {
		return &fnpb.StartWorkerResponse{}, nil
	}
	p.wg.Go(func() {
		if err := p.run(ctx, req); err != nil && ctx.Err() == nil {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
			p.t.Logf("worker %s: %v", req.GetWorkerId(), err)
		}
	})
	return &fnpb.StartWorkerResponse{}, nil
}

// waitAsked waits for the job server to ask for a worker.
func (p *workerPool) waitAsked(t *testing.T) {
	t.Helper()
	select {
	case <-p.started:
	case <-time.After(time.Minute):
		t.Fatal("the job server asked for no worker")
	}
}

func (p *workerPool) StopWorker(_ context.Context, req *fnpb.StopWorkerRequest) (*fnpb.StopWorkerResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cancel, ok := p.workers[req.GetWorkerId()]; ok {
		cancel()
		delete(p.workers, req.GetWorkerId())
	}
	return &fnpb.StopWorkerResponse{}, nil
}

func (p *workerPool) run(ctx context.Context, req *fnpb.StartWorkerRequest) error {
	id := req.GetWorkerId()
	ctx = grpcx.WriteWorkerID(ctx, id)
	info, err := tools.ProvisionInfo(ctx, req.GetProvisionEndpoint().GetUrl())
	if err != nil {
		return err
	}
	dir := filepath.Join(p.dir, id)
	arts, err := artifact.Materialize(ctx, info.GetArtifactEndpoint().GetUrl(), info.GetDependencies(), info.GetRetrievalToken(), dir)
	if err != nil {
		return err
	}
	if len(arts) != 1 {
		return fmt.Errorf("got %d artifacts; want the worker binary only", len(arts))
	}
	name, _ := artifact.MustExtractFilePayload(arts[0])
	worker := filepath.Join(dir, name)
	p.mu.Lock()
	p.retrieved = append(p.retrieved, worker)
	p.mu.Unlock()
	opts, err := tools.ProtoToJSON(info.GetPipelineOptions())
	if err != nil {
		return err
	}
	optsFile := filepath.Join(dir, "pipeline_options.json")
	if err := os.WriteFile(optsFile, []byte(opts), 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, worker,
		"--worker=true",
		"--id="+id,
		"--logging_endpoint="+info.GetLoggingEndpoint().GetUrl(),
		"--control_endpoint="+info.GetControlEndpoint().GetUrl(),
		"--semi_persist_dir="+dir,
	)
	cmd.Env = append(os.Environ(), "PIPELINE_OPTIONS_FILE="+optsFile)
	out := &watchWriter{watch: []byte(p.watch), found: func() { p.seenOnce.Do(func() { close(p.seen) }) }}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("worker exited: %w\n%s", err, out.String())
	}
	return nil
}

// watchWriter keeps a worker's output and calls found when it contains
// watch.
type watchWriter struct {
	watch []byte
	found func()

	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *watchWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if len(w.watch) > 0 && bytes.Contains(w.buf.Bytes(), w.watch) {
		w.found()
	}
	return len(b), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

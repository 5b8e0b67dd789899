// Package embeddedrunner runs Beam's prism job server inside this process,
// reachable only through the loopback interface.
//
// It is the only package that imports prism. Prism's public API leaves three
// problems that this package works around:
//
//   - prism listens on every interface (":PORT"), so anyone on the network
//     could submit a pipeline, and with it run commands on this machine. On
//     Linux the listening socket is found in this process and bound to the
//     loopback device (SO_BINDTODEVICE): connections to any other address of
//     this machine are refused. Where that cannot be done, Start fails
//     unless Options.AllowUnconfined accepts the exposure.
//   - prism panics when its port is taken. Start picks a free port, recovers
//     the panic of a lost race and retries with another port.
//   - prism offers no way to stop its gRPC server. Close cancels the jobs
//     still running, then shuts the listening socket down (and the
//     connections it accepted), so the server's accept loop ends, gRPC
//     closes the listener and the port is released.
//
// Prism logs through slog.Default(), read when Start is called, not through
// Options.Logger: callers who want prism's own messages out of the user's
// terminal set slog.Default to a quiet handler before Start (and to a
// verbose one when the user asks for debug output).
package embeddedrunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/problem"
)

// Options configure the embedded runner.
type Options struct {
	// Logger receives the runner's own progress; nil discards it.
	Logger *slog.Logger
	// AllowUnconfined starts the runner even where its listener cannot be
	// confined to loopback, with a warning: prism listens on every
	// interface, and anyone who reaches it can submit jobs. Otherwise Start
	// fails closed.
	AllowUnconfined bool

	// pickPort chooses the port prism should listen on; tests replace it to
	// simulate a port taken between choosing and listening.
	pickPort func() (int, error)
	// confine restricts prism's socket to loopback; tests replace it to
	// make it fail.
	confine func(*serverSocket) (string, error)
}

const (
	// listenAttempts bounds the retries when another process takes the
	// chosen port before prism listens on it.
	listenAttempts = 5
	// readyTimeout bounds how long Start waits for prism to answer.
	readyTimeout = 30 * time.Second
	// closeTimeout bounds cancelling jobs and releasing the port on Close.
	closeTimeout = 10 * time.Second
)

// Runner is a prism job server running in this process.
type Runner struct {
	logger   *slog.Logger
	port     int
	endpoint string
	conn     *grpc.ClientConn
	client   jobpb.JobServiceClient
	sock     *serverSocket

	closeOnce sync.Once
	closeErr  error
}

// Start starts prism on a free port of 127.0.0.1 and connects a client to it.
func Start(ctx context.Context, opts Options) (*Runner, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pick := opts.pickPort
	if pick == nil {
		pick = freePort
	}

	port, err := listen(ctx, logger, pick)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		logger:   logger,
		port:     port,
		endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
	}

	r.sock, err = findServerSocket(port)
	if err == nil {
		var dev string
		confine := opts.confine
		if confine == nil {
			confine = (*serverSocket).restrictToLoopback
		}
		if dev, err = confine(r.sock); err == nil {
			logger.Debug("embedded runner restricted to the loopback interface: prism listens on all interfaces, its socket is bound to the loopback device so connections from other interfaces are refused",
				"port", port, "device", dev)
		}
	}
	if err != nil {
		// A job submitted to prism may run commands on this machine: it
		// fails closed unless the caller accepts the exposure.
		if !opts.AllowUnconfined {
			r.Close()
			return nil, problem.Failf("run on Linux, where beamctl binds it to the loopback device, or set {Expose} to accept that other machines may submit jobs to it",
				"the embedded runner listens on every network interface and cannot be confined to loopback here (%v)", err).Wrap(err)
		}
		logger.Warn("embedded runner listens on all network interfaces: other machines may submit jobs to it", "port", port, "error", err)
	}

	r.conn, err = grpc.NewClient(r.endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("connect to embedded runner at %s: %w", r.endpoint, err)
	}
	r.client = jobpb.NewJobServiceClient(r.conn)

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := r.client.GetJobs(readyCtx, &jobpb.GetJobsRequest{}, grpc.WaitForReady(true)); err != nil {
		r.Close()
		return nil, fmt.Errorf("embedded runner at %s does not answer: %w", r.endpoint, err)
	}
	logger.Debug("embedded runner started", "endpoint", r.endpoint)
	return r, nil
}

// listen starts prism on a port from pick, retrying with another port when
// the chosen one was taken in the meantime.
func listen(ctx context.Context, logger *slog.Logger, pick func() (int, error)) (int, error) {
	var last error
	for attempt := 1; attempt <= listenAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("start embedded runner: %w", err)
		}
		port, err := pick()
		if err != nil {
			return 0, fmt.Errorf("start embedded runner: choose a port: %w", err)
		}
		if last = createJobServer(port); last == nil {
			return port, nil
		}
		logger.Debug("embedded runner could not listen, retrying on another port", "port", port, "attempt", attempt, "error", last)
	}
	return 0, fmt.Errorf("start embedded runner: no usable port after %d attempts: %w", listenAttempts, last)
}

// createJobServer starts prism on port and leaves it serving.
func createJobServer(port int) (err error) {
	// prism panics, in this goroutine, when it cannot listen.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("prism cannot listen on port %d: %v", port, p)
		}
	}()
	// CreateJobServer listens and starts serving before it dials the server
	// itself, and returns only that client, whose connection could never be
	// closed. A context that is already cancelled makes that dial give up
	// and close its connection; the server keeps serving, and Start connects
	// its own client.
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = prism.CreateJobServer(dead, prism.Options{Port: port})
	return nil
}

// freePort asks the kernel for a port that is free on every interface, as
// prism will listen on all of them.
func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Endpoint is the job service address, "127.0.0.1:PORT".
func (r *Runner) Endpoint() string { return r.endpoint }

// Client is a job service client connected to the runner.
func (r *Runner) Client() jobpb.JobServiceClient { return r.client }

// Conn is the client's connection; the artifact staging service is served on
// the same endpoint.
func (r *Runner) Conn() *grpc.ClientConn { return r.conn }

// Close cancels the jobs still running, stops the server and releases its
// port. It is safe to call more than once.
func (r *Runner) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

func (r *Runner) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()

	var errs []error
	if r.conn != nil {
		r.cancelJobs(ctx)
		if err := r.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close embedded runner client: %w", err))
		}
	}
	if r.sock == nil {
		r.logger.Warn("embedded runner keeps its port until beamctl exits", "port", r.port)
	} else if err := r.sock.stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop embedded runner on port %d: %w", r.port, err))
	} else {
		r.logger.Debug("embedded runner stopped", "port", r.port)
	}
	return errors.Join(errs...)
}

// cancelJobs asks prism to cancel every job that has not finished, so their
// goroutines wind down once the server is gone.
func (r *Runner) cancelJobs(ctx context.Context) {
	resp, err := r.client.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		r.logger.Debug("embedded runner: cannot list jobs to cancel", "error", err)
		return
	}
	for _, j := range resp.GetJobInfo() {
		if beam.Terminal(j.GetState()) {
			continue
		}
		r.logger.Debug("embedded runner: cancelling job still running at close", "job", j.GetJobId(), "state", j.GetState().String())
		if _, err := r.client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()}); err != nil {
			r.logger.Debug("embedded runner: cancel failed", "job", j.GetJobId(), "error", err)
		}
	}
}

// JobOfWorker is the id of the job a worker the runner asked a pool for
// belongs to: prism names each worker "JOB[NAME]_ENV" (worker.MakeWorker,
// given the job's String). An id of another form yields "".
func JobOfWorker(workerID string) string {
	job, _, ok := strings.Cut(workerID, "[")
	if !ok {
		return ""
	}
	return job
}

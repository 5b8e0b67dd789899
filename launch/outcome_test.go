package launch_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/internal/syncbuf"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

// faults are what a faultyRunner does wrong.
type faults struct {
	states []jobpb.JobState_Enum
	// dropAfterStates ends the state stream with an error after states.
	dropAfterStates bool
	ignoreCancel    bool
	hangMetrics     bool
}

// faultyRunner is a Job API server for one job, with the faults a real
// runner does not produce on demand. Its state stream sends states, then
// stays open; a cancellation ends the job CANCELLED unless ignoreCancel.
type faultyRunner struct {
	jobpb.UnimplementedJobServiceServer
	faults

	cancels      atomic.Int32
	cancelled    chan struct{} // closed by the first Cancel
	cancelOnce   sync.Once
	followed     chan struct{} // closed when the state stream opens
	followOnce   sync.Once
	metricsAsked atomic.Int32
}

func (f *faultyRunner) current() jobpb.JobState_Enum {
	if len(f.states) == 0 {
		return jobpb.JobState_RUNNING
	}
	return f.states[len(f.states)-1]
}

func (f *faultyRunner) GetState(context.Context, *jobpb.GetJobStateRequest) (*jobpb.JobStateEvent, error) {
	return &jobpb.JobStateEvent{State: f.current()}, nil
}

func (f *faultyRunner) Cancel(context.Context, *jobpb.CancelJobRequest) (*jobpb.CancelJobResponse, error) {
	f.cancels.Add(1)
	f.cancelOnce.Do(func() { close(f.cancelled) })
	return &jobpb.CancelJobResponse{State: jobpb.JobState_CANCELLING}, nil
}

func (f *faultyRunner) GetStateStream(_ *jobpb.GetJobStateRequest, stream jobpb.JobService_GetStateStreamServer) error {
	f.followOnce.Do(func() { close(f.followed) })
	for _, s := range f.states {
		if err := stream.Send(&jobpb.JobStateEvent{State: s}); err != nil {
			return err
		}
	}
	if f.dropAfterStates {
		return status.Error(codes.Internal, "the runner lost the job")
	}
	select {
	case <-f.cancelled:
		if f.ignoreCancel {
			break
		}
		return stream.Send(&jobpb.JobStateEvent{State: jobpb.JobState_CANCELLED})
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// GetMessageStream is left unimplemented: a runner may have only the
// state stream, and the follow then does not wait for messages.

func (f *faultyRunner) GetJobMetrics(ctx context.Context, _ *jobpb.GetJobMetricsRequest) (*jobpb.GetJobMetricsResponse, error) {
	f.metricsAsked.Add(1)
	if f.hangMetrics {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &jobpb.GetJobMetricsResponse{Metrics: &jobpb.MetricResults{}}, nil
}

// serve runs f on an in-memory connection for one test.
func serve(t *testing.T, fs faults) (*faultyRunner, *grpc.ClientConn) {
	t.Helper()
	f := &faultyRunner{faults: fs, cancelled: make(chan struct{}), followed: make(chan struct{})}
	return f, grpctest.Serve(t, "faulty-runner", func(s *grpc.Server) { jobpb.RegisterJobServiceServer(s, f) })
}

// Short bounds for the waits, so that a wait that runs to its deadline
// costs milliseconds; slack is what a loaded machine may add.
const (
	cancelWait  = 150 * time.Millisecond
	metricsWait = 100 * time.Millisecond
	slack       = 2 * time.Second
)

var (
	R         = jobpb.JobState_RUNNING
	D         = jobpb.JobState_DONE
	F         = jobpb.JobState_FAILED
	C         = jobpb.JobState_CANCELLED
	errWorker = errors.New("worker 1 exited with status 2")
)

// TestFollowPolicy drives the job-outcome rules through runners that
// misbehave: each case checks the Outcome, State and error, that the
// follow ended within the bounds of its waits, and what it logged of them.
func TestFollowPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		runner faults
		// On the first RUNNING state the test interrupts (cancels ctx),
		// aborts (interrupts, then, once the runner is asked to cancel,
		// ends Waits.Abort: a second interrupt), or delivers a worker
		// failure.
		interrupt, abort, workerFails bool
		watch                         bool
		// defaultWaits keeps the 30 s and 10 s defaults: only an abort
		// may end such a case in time.
		defaultWaits bool

		outcome     launch.Outcome
		state       jobpb.JobState_Enum
		err         error  // matched with errors.Is; nil: no error
		errText     string // in the error's text
		cancels     int32
		within      time.Duration
		log, notLog string
	}{
		{name: "done", runner: faults{states: []jobpb.JobState_Enum{R, D}},
			outcome: launch.Done, state: D, within: 0, notLog: "waiting"},
		{name: "failed", runner: faults{states: []jobpb.JobState_Enum{R, F}},
			outcome: launch.Failed, state: F, errText: "job-1 failed"},
		{name: "cancelled by someone else", runner: faults{states: []jobpb.JobState_Enum{R, C}},
			outcome: launch.Cancelled, state: C},
		{name: "interrupted, cancel confirmed", runner: faults{states: []jobpb.JobState_Enum{R}}, interrupt: true,
			outcome: launch.Interrupted, state: C, cancels: 1, notLog: "waiting for"},
		{name: "interrupted, cancel never confirmed", runner: faults{states: []jobpb.JobState_Enum{R}, ignoreCancel: true}, interrupt: true,
			outcome: launch.Interrupted, state: R, err: launch.ErrNotConfirmed, errText: "it may still be running", cancels: 1,
			within: cancelWait, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "second interrupt ends the waits", runner: faults{states: []jobpb.JobState_Enum{R}, ignoreCancel: true, hangMetrics: true},
			abort: true, defaultWaits: true,
			outcome: launch.Interrupted, state: R, err: launch.ErrNotConfirmed, cancels: 1,
			log: "stopped waiting for the runner to confirm the cancellation"},
		{name: "state stream dropped mid-job", runner: faults{states: []jobpb.JobState_Enum{R}, dropAfterStates: true},
			outcome: launch.Failed, state: R, errText: "lost track of job job-1", cancels: 0},
		{name: "metrics hang after the end", runner: faults{states: []jobpb.JobState_Enum{R, D}, hangMetrics: true},
			outcome: launch.Done, state: D, within: metricsWait, log: "gave up waiting for the job's metrics"},
		{name: "worker failed, cancel confirmed", runner: faults{states: []jobpb.JobState_Enum{R}}, workerFails: true,
			outcome: launch.Failed, state: C, err: errWorker, cancels: 1},
		{name: "worker failed, cancel never confirmed", runner: faults{states: []jobpb.JobState_Enum{R}, ignoreCancel: true}, workerFails: true,
			outcome: launch.Failed, state: R, err: errWorker, cancels: 1,
			within: cancelWait, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "watching, interrupted", runner: faults{states: []jobpb.JobState_Enum{R}}, interrupt: true, watch: true,
			outcome: launch.Interrupted, state: R, errText: "context canceled", cancels: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner, conn := serve(t, tc.runner)
			ctx, interrupt := context.WithCancel(context.Background())
			defer interrupt()
			abort, abortWaits := context.WithCancel(context.Background())
			defer abortWaits()
			failures := make(chan error, 1)
			var logs syncbuf.Buffer
			o := launch.FollowOptions{
				Failures: failures,
				Watch:    tc.watch,
				Metrics:  true,
				Waits:    launch.Waits{Cancel: cancelWait, Metrics: metricsWait, Abort: abort},
				Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
			}
			if tc.defaultWaits {
				o.Waits.Cancel, o.Waits.Metrics = 0, 0
			}
			var once sync.Once
			o.OnEvent = func(e submit.Event) {
				if e.Kind != submit.EventState || e.State != R.String() {
					return
				}
				once.Do(func() {
					switch {
					case tc.abort:
						// The second interrupt comes while the
						// cancellation is being waited for.
						go func() {
							<-runner.cancelled
							abortWaits()
						}()
						interrupt()
					case tc.interrupt:
						interrupt()
					case tc.workerFails:
						failures <- errWorker
					}
				})
			}

			start := time.Now()
			res := launch.Follow(ctx, conn, &submit.Job{ID: "job-1"}, o)
			took := time.Since(start)

			if res.Outcome != tc.outcome || res.State != tc.state {
				t.Errorf("Outcome %v, State %v; want %v, %v (err %v)", res.Outcome, res.State, tc.outcome, tc.state, res.Err)
			}
			switch {
			case tc.err == nil && tc.errText == "" && res.Err != nil:
				t.Errorf("Err = %v; want none", res.Err)
			case tc.err != nil && !errors.Is(res.Err, tc.err):
				t.Errorf("Err = %v; want it to match %v", res.Err, tc.err)
			case tc.errText != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.errText)):
				t.Errorf("Err = %v; want it to say %q", res.Err, tc.errText)
			}
			if res.WorkerFailed != tc.workerFails {
				t.Errorf("WorkerFailed = %v; want %v", res.WorkerFailed, tc.workerFails)
			}
			if got := runner.cancels.Load(); got != tc.cancels {
				t.Errorf("%d cancels; want %d", got, tc.cancels)
			}
			if got := runner.metricsAsked.Load(); got != 1 && !tc.abort {
				t.Errorf("metrics asked %d times; want once, however the job ended", got)
			}
			if limit := tc.within + slack; took > limit {
				t.Errorf("Follow took %v; want at most %v", took, limit)
			}
			if tc.log != "" && !strings.Contains(logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, logs.String())
			}
			if tc.notLog != "" && strings.Contains(logs.String(), tc.notLog) {
				t.Errorf("log has %q:\n%s", tc.notLog, logs.String())
			}
		})
	}
}

// TestCancelPolicy is jobs cancel: cancel, then wait for the runner to
// confirm, within the wait's bound.
func TestCancelPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		runner    faults
		interrupt bool // cancel ctx once the wait for the confirmation runs
		state     jobpb.JobState_Enum
		anyState  bool // the interrupt may come before any state
		err       error
		within    time.Duration
		log       string
	}{
		{name: "confirmed", runner: faults{states: []jobpb.JobState_Enum{R}}, state: C},
		{name: "never confirmed", runner: faults{states: []jobpb.JobState_Enum{R}, ignoreCancel: true},
			state: R, err: launch.ErrNotConfirmed, within: cancelWait, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "already ended", runner: faults{states: []jobpb.JobState_Enum{R, D}}, err: submit.ErrJobFinished},
		{name: "interrupted while waiting", runner: faults{states: []jobpb.JobState_Enum{R}, ignoreCancel: true}, interrupt: true,
			anyState: true, err: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner, conn := serve(t, tc.runner)
			ctx, interrupt := context.WithCancel(context.Background())
			defer interrupt()
			if tc.interrupt {
				go func() {
					<-runner.followed
					interrupt()
				}()
			}
			var logs syncbuf.Buffer
			start := time.Now()
			res, err := launch.Cancel(ctx, conn, "job-1", launch.Waits{Cancel: cancelWait}, slog.New(slog.NewTextHandler(&logs, nil)))
			took := time.Since(start)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Cancel = %v; want %v", err, tc.err)
			}
			if res != nil && !tc.anyState && res.State != tc.state {
				t.Errorf("State %v; want %v", res.State, tc.state)
			}
			if limit := tc.within + slack; took > limit {
				t.Errorf("Cancel took %v; want at most %v", took, limit)
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, logs.String())
			}
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	failed := &submit.JobFailedError{JobID: "job-1"}
	for _, tc := range []struct {
		state jobpb.JobState_Enum
		err   error
		want  launch.Outcome
	}{
		{D, nil, launch.Done},
		{C, nil, launch.Cancelled},
		{F, failed, launch.Failed},
		{jobpb.JobState_DRAINED, nil, launch.Failed},
		{R, errors.New("lost track"), launch.Failed},
		{D, errWorker, launch.Failed},
	} {
		if got := launch.OutcomeOf(tc.state, tc.err); got != tc.want {
			t.Errorf("OutcomeOf(%v, %v) = %v; want %v", tc.state, tc.err, got, tc.want)
		}
	}
}

package launch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

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
	// errLost ends a state stream mid-job.
	errLost = status.Error(codes.Internal, "the runner lost the job")
)

// ending is how a case expects a followed job to end.
type ending struct {
	outcome      launch.Outcome
	state        jobpb.JobState_Enum
	err          error  // matched with errors.Is; nil: no error, unless errText
	errText      string // in the error's text
	workerFailed bool
	// log is in the log; notLog is not.
	log, notLog string
}

// check compares how the job ended, the Result and the log, with e.
func (e ending) check(t *testing.T, res *launch.Result, logs string) {
	t.Helper()
	if res.Outcome != e.outcome || res.State != e.state {
		t.Errorf("Outcome %v, State %v; want %v, %v (err %v)", res.Outcome, res.State, e.outcome, e.state, res.Err)
	}
	switch {
	case e.err == nil && e.errText == "" && res.Err != nil:
		t.Errorf("Err = %v; want none", res.Err)
	case e.err != nil && !errors.Is(res.Err, e.err):
		t.Errorf("Err = %v; want it to match %v", res.Err, e.err)
	case e.errText != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), e.errText)):
		t.Errorf("Err = %v; want it to say %q", res.Err, e.errText)
	}
	if res.WorkerFailed != e.workerFailed {
		t.Errorf("WorkerFailed = %v; want %v", res.WorkerFailed, e.workerFailed)
	}
	if e.log != "" && !strings.Contains(logs, e.log) {
		t.Errorf("log lacks %q:\n%s", e.log, logs)
	}
	if e.notLog != "" && strings.Contains(logs, e.notLog) {
		t.Errorf("log has %q:\n%s", e.notLog, logs)
	}
}

// user is the test's side of a followed job: on the job's first RUNNING
// state, ctx ends if the user interrupts (Ctrl-C); abort ends too if the
// user interrupts again once the runner is asked to cancel; failures
// carries the error of a worker that fails. Everything ends at the test's
// deadline, so that a launch waiting for what never comes fails its case
// instead of hanging the package.
type user struct {
	ctx, abort context.Context
	failures   chan error
	// event is the follow's OnEvent.
	event func(submit.Event)
}

func newUser(t *testing.T, jobs *grpctest.JobServer, interrupt, abort, workerFails bool) *user {
	deadline, stop := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(stop)
	ctx, cancel := context.WithCancel(deadline)
	t.Cleanup(cancel)
	abortCtx, abortWaits := context.WithCancel(deadline)
	t.Cleanup(abortWaits)
	u := &user{ctx: ctx, abort: abortCtx, failures: make(chan error, 1)}
	var once sync.Once
	u.event = func(e submit.Event) {
		if e.Kind != submit.EventState || e.State != R.String() {
			return
		}
		once.Do(func() {
			switch {
			case abort:
				go func() {
					select {
					case <-jobs.CancelRequested():
					case <-deadline.Done():
					}
					abortWaits()
				}()
				cancel()
			case interrupt:
				cancel()
			case workerFails:
				u.failures <- errWorker
			}
		})
	}
	return u
}

package launch_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"

	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/internal/syncbuf"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

// TestFollowPolicy drives the job-outcome rules through runners that
// misbehave: each case checks the Outcome, State and error, that the
// follow ended within the bounds of its waits, and what it logged of them.
func TestFollowPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		runner grpctest.Job
		// On the first RUNNING state the test interrupts (cancels ctx),
		// aborts (interrupts, then, once the runner is asked to cancel,
		// ends Waits.Abort: a second interrupt), or delivers a worker
		// failure.
		interrupt, abort, workerFails bool
		watch                         bool
		// waits bound the waits once the job is to stop: only cases of a
		// wait that runs out set one, and the follow must end within it.
		// The defaults are long enough for any machine, and end at the
		// test's deadline.
		waits launch.Waits

		outcome     launch.Outcome
		state       jobpb.JobState_Enum
		err         error  // matched with errors.Is; nil: no error
		errText     string // in the error's text
		cancels     int
		log, notLog string
	}{
		{name: "done", runner: grpctest.Job{States: []jobpb.JobState_Enum{R, D}},
			outcome: launch.Done, state: D, notLog: "waiting"},
		{name: "failed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R, F}},
			outcome: launch.Failed, state: F, errText: "job-1 failed"},
		{name: "cancelled by someone else", runner: grpctest.Job{States: []jobpb.JobState_Enum{R, C}},
			outcome: launch.Cancelled, state: C},
		{name: "interrupted, cancel confirmed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}}, interrupt: true,
			outcome: launch.Interrupted, state: C, cancels: 1, notLog: "waiting for"},
		{name: "interrupted, cancel never confirmed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}, IgnoreCancel: true}, interrupt: true,
			outcome: launch.Interrupted, state: R, err: launch.ErrNotConfirmed, errText: "it may still be running", cancels: 1,
			waits: launch.Waits{Cancel: cancelWait}, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "second interrupt ends the waits", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}, IgnoreCancel: true, HangMetrics: true},
			abort:   true,
			outcome: launch.Interrupted, state: R, err: launch.ErrNotConfirmed, cancels: 1,
			log: "stopped waiting for the runner to confirm the cancellation"},
		{name: "state stream dropped mid-job", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}, StatesEnd: errLost},
			outcome: launch.Failed, state: R, errText: "lost track of job job-1", cancels: 0},
		{name: "metrics hang after the end", runner: grpctest.Job{States: []jobpb.JobState_Enum{R, D}, HangMetrics: true},
			outcome: launch.Done, state: D, waits: launch.Waits{Metrics: metricsWait}, log: "gave up waiting for the job's metrics"},
		{name: "worker failed, cancel confirmed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}}, workerFails: true,
			outcome: launch.Failed, state: C, err: errWorker, cancels: 1},
		{name: "worker failed, cancel never confirmed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}, IgnoreCancel: true}, workerFails: true,
			outcome: launch.Failed, state: R, err: errWorker, cancels: 1,
			waits: launch.Waits{Cancel: cancelWait}, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "watching, interrupted", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}}, interrupt: true, watch: true,
			outcome: launch.Interrupted, state: R, errText: "context canceled", cancels: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner, conn := grpctest.ServeJobs(t, tc.runner)
			u := newUser(t, runner, tc.interrupt, tc.abort, tc.workerFails)
			var logs syncbuf.Buffer
			o := launch.FollowOptions{
				OnEvent:  u.event,
				Failures: u.failures,
				Watch:    tc.watch,
				Metrics:  true,
				Waits:    launch.Waits{Cancel: tc.waits.Cancel, Metrics: tc.waits.Metrics, Abort: u.abort},
				Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
			}

			start := time.Now()
			res := launch.Follow(u.ctx, conn, &submit.Job{ID: "job-1"}, o)
			took := time.Since(start)

			ending{outcome: tc.outcome, state: tc.state, err: tc.err, errText: tc.errText, workerFailed: tc.workerFails,
				log: tc.log, notLog: tc.notLog}.check(t, res, logs.String())
			if got := runner.Calls("Cancel"); got != tc.cancels {
				t.Errorf("%d cancels; want %d", got, tc.cancels)
			}
			if got := runner.Calls("GetJobMetrics"); got != 1 && !tc.abort {
				t.Errorf("metrics asked %d times; want once, however the job ended", got)
			}
			if limit := tc.waits.Cancel + tc.waits.Metrics + slack; took > limit {
				t.Errorf("Follow took %v; want at most %v", took, limit)
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
		runner    grpctest.Job
		interrupt bool // cancel ctx once the wait for the confirmation runs
		state     jobpb.JobState_Enum
		anyState  bool // the interrupt may come before any state
		err       error
		// wait bounds the wait for the confirmation, for the case of one
		// that runs out; zero: the default, ended by the test's deadline.
		wait time.Duration
		log  string
	}{
		{name: "confirmed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}}, state: C},
		{name: "never confirmed", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}, IgnoreCancel: true},
			state: R, err: launch.ErrNotConfirmed, wait: cancelWait, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "already ended", runner: grpctest.Job{States: []jobpb.JobState_Enum{R, D}}, err: submit.ErrJobFinished},
		{name: "interrupted while waiting", runner: grpctest.Job{States: []jobpb.JobState_Enum{R}, IgnoreCancel: true}, interrupt: true,
			anyState: true, err: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner, conn := grpctest.ServeJobs(t, tc.runner)
			deadline, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			ctx, interrupt := context.WithCancel(deadline)
			defer interrupt()
			if tc.interrupt {
				go func() {
					<-runner.Followed()
					interrupt()
				}()
			}
			var logs syncbuf.Buffer
			start := time.Now()
			res, err := launch.Cancel(ctx, conn, "job-1", launch.Waits{Cancel: tc.wait, Abort: deadline}, slog.New(slog.NewTextHandler(&logs, nil)))
			took := time.Since(start)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Cancel = %v; want %v", err, tc.err)
			}
			if res != nil && !tc.anyState && res.State != tc.state {
				t.Errorf("State %v; want %v", res.State, tc.state)
			}
			if limit := tc.wait + slack; took > limit {
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

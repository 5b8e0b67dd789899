package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/submit"
)

// The job-outcome rules live here, for every command that follows,
// cancels or watches a job: which end is which Outcome, how a cancellation
// is confirmed, and how long each wait once a job is to stop may take.

// Default bounds of the waits once a job is to stop.
const (
	// DefaultCancelWait bounds the wait for the runner to confirm a
	// cancellation.
	DefaultCancelWait = 30 * time.Second
	// DefaultMetricsWait bounds the read of a job's metrics after its end.
	DefaultMetricsWait = 10 * time.Second
)

// ErrNotConfirmed is a cancellation whose end was not seen before the wait
// for it ended: the job may still be running.
var ErrNotConfirmed = errors.New("the runner did not confirm the cancellation")

// Waits bounds what a launch waits for once its job has ended or is to
// stop. Each wait ends at its deadline, or at once when Abort ends, and
// the logger is told what was waited for. Zero fields take the defaults.
type Waits struct {
	// Cancel bounds the wait for the runner to confirm a cancellation
	// (and, on Dataflow, for the launcher to stop); default
	// DefaultCancelWait.
	Cancel time.Duration
	// Metrics bounds the read of the job's metrics after its end; default
	// DefaultMetricsWait.
	Metrics time.Duration
	// Abort, once it ends, ends every such wait at once: the user will
	// not wait any longer (a second interrupt). Nil: only deadlines end
	// them.
	Abort context.Context
}

func (w Waits) cancel() time.Duration {
	if w.Cancel <= 0 {
		return DefaultCancelWait
	}
	return w.Cancel
}

func (w Waits) metrics() time.Duration {
	if w.Metrics <= 0 {
		return DefaultMetricsWait
	}
	return w.Metrics
}

// What ended a wait, as its context's cause.
var (
	errWaitExpired = errors.New("the wait's deadline passed")
	errWaitAborted = errors.New("the wait was aborted")
)

// begin starts a wait of at most limit from base: the returned context
// ends at the deadline, when Abort ends, or with base.
func (w Waits) begin(base context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	tctx, stopTimer := context.WithTimeoutCause(base, limit, errWaitExpired)
	ctx, cancel := context.WithCancelCause(tctx)
	stopAbort := func() bool { return false }
	if w.Abort != nil {
		if w.Abort.Err() != nil {
			cancel(errWaitAborted)
		} else {
			stopAbort = context.AfterFunc(w.Abort, func() { cancel(errWaitAborted) })
		}
	}
	return ctx, func() {
		stopAbort()
		cancel(nil)
		stopTimer()
	}
}

// ended tells log what a wait waited for, when its deadline or Abort ended
// it, and reports whether one did. err is the call's error: a gRPC server
// that has the deadline too may answer before the client's context ends.
func ended(log *slog.Logger, ctx context.Context, err error, what, jobID string, limit time.Duration) bool {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errWaitExpired), cause == nil && status.Code(err) == codes.DeadlineExceeded:
		log.Warn("gave up waiting for "+what, "job", jobID, "waited", limit)
		return true
	case errors.Is(cause, errWaitAborted):
		log.Warn("stopped waiting for "+what, "job", jobID)
		return true
	}
	return false
}

// OutcomeOf is how a job followed to its end ended, from its last state and
// the follow's error (a *submit.JobFailedError for FAILED).
func OutcomeOf(state jobpb.JobState_Enum, err error) Outcome {
	switch {
	case err != nil:
		return Failed
	case state == jobpb.JobState_DONE:
		return Done
	case state == jobpb.JobState_CANCELLED:
		return Cancelled
	}
	return Failed
}

// FollowOptions say how Follow follows a job. The zero value follows it to
// its end, cancelling it when ctx ends.
type FollowOptions struct {
	// OnEvent is told of the job's state changes and messages, from the
	// calling goroutine.
	OnEvent func(submit.Event)
	// Failures delivers failures of the job's workers on this machine;
	// the first cancels the job.
	Failures <-chan error
	// Watch leaves the job running when ctx ends: the caller watches a
	// job that is not its own, and ctx ends only the watching.
	Watch bool
	// Metrics reads the job's metrics after its end.
	Metrics bool
	Waits   Waits
	// Logger is told of each wait that ended early; nil discards it.
	Logger *slog.Logger
}

// Follow follows the job until it ends and says how: the Result's
// Outcome, State and Err. Unless Watch, the job is cancelled when ctx ends
// (Outcome Interrupted) or a worker fails (Failed, WorkerFailed), and
// Follow waits, within Waits.Cancel, for the runner to confirm; a
// cancellation not confirmed leaves Err matching ErrNotConfirmed.
func Follow(ctx context.Context, conn grpc.ClientConnInterface, job *submit.Job, o FollowOptions) *Result {
	return follow(ctx, conn, job, o, time.Now(), false)
}

// Cancel cancels a job and waits, within w.Cancel, for the runner to
// confirm its end, which the Result gives: a job may end DONE or FAILED
// before the cancellation takes. An error means the cancellation was
// refused (submit.ErrJobNotFound, submit.ErrJobFinished), or its end was
// not seen: ErrNotConfirmed when the wait ended first, ctx's error when
// ctx did.
func Cancel(ctx context.Context, conn grpc.ClientConnInterface, jobID string, w Waits, log *slog.Logger) (*Result, error) {
	if err := submit.Cancel(ctx, conn, jobID); err != nil {
		return nil, err
	}
	res := follow(ctx, conn, &submit.Job{ID: jobID}, FollowOptions{Waits: w, Logger: log}, time.Now(), true)
	var failed *submit.JobFailedError
	switch {
	case res.Outcome == Interrupted:
		return res, fmt.Errorf("job %s: cancel requested, but its end was not seen: %w", jobID, context.Cause(ctx))
	case res.Err != nil && !errors.As(res.Err, &failed):
		return res, fmt.Errorf("job %s: cancel requested, but its end was not seen: %w", jobID, res.Err)
	}
	return res, nil
}

// follow is Follow; cancelled says the job was cancelled already, so that
// only its confirmation is waited for, and ctx ends that wait too.
func follow(ctx context.Context, conn grpc.ClientConnInterface, job *submit.Job, o FollowOptions, start time.Time, cancelled bool) *Result {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	onEvent := o.OnEvent
	if onEvent == nil {
		onEvent = func(submit.Event) {}
	}
	// Unless only watching, the follow outlives an interrupt: after
	// cancelling, the job must be seen to stop.
	base := context.WithoutCancel(ctx)
	if o.Watch {
		base = ctx
	}
	followCtx, stopFollow := context.WithCancel(base)
	defer stopFollow()
	// watchCtx ends the canceller's calls once the follow has ended.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()

	var (
		wg          sync.WaitGroup
		reason      error // what made the canceller cancel
		unconfirmed error // the cancellation whose end was not seen
	)
	done := make(chan struct{})
	if !o.Watch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			waitBase := watchCtx
			if cancelled {
				waitBase = ctx
			} else {
				select {
				case reason = <-o.Failures:
				case <-ctx.Done():
					reason = context.Cause(ctx)
				case <-done:
					return
				}
			}
			limit := o.Waits.cancel()
			wctx, end := o.Waits.begin(waitBase, limit)
			defer end()
			if !cancelled {
				err := submit.Cancel(wctx, conn, job.ID)
				switch {
				case err == nil, errors.Is(err, submit.ErrJobFinished), wctx.Err() != nil:
				case errors.Is(err, submit.ErrUnreachable):
					// The follow reports the lost job server, and what
					// that means for the job, in its own words.
					log.Debug("cancelling the job failed", "job", job.ID, "err", err)
				default:
					log.Warn("cancelling the job failed", "job", job.ID, "err", err)
				}
			}
			select {
			case <-wctx.Done():
				if ended(log, wctx, nil, "the runner to confirm the cancellation", job.ID, limit) {
					unconfirmed = ErrNotConfirmed
				}
				stopFollow()
			case <-done:
			}
		}()
	}
	state, err := submit.Follow(followCtx, conn, job.ID, onEvent)
	close(done)
	stopWatch()
	wg.Wait()

	res := &Result{Job: job, State: state, Err: err}
	switch {
	// Workers here fail too when the job server they work for is gone:
	// its loss is what to report.
	case reason != nil && ctx.Err() == nil && !errors.Is(err, submit.ErrUnreachable):
		res.Err, res.WorkerFailed = reason, true
	case unconfirmed != nil:
		res.Err = fmt.Errorf("job %s: %w (last state %s); it may still be running", job.ID, unconfirmed, state)
	}
	if o.Metrics {
		limit := o.Waits.metrics()
		mctx, end := o.Waits.begin(context.WithoutCancel(ctx), limit)
		metrics, merr := submit.Metrics(mctx, conn, job.ID)
		if merr != nil && !ended(log, mctx, merr, "the job's metrics", job.ID, limit) {
			log.Debug("reading metrics failed", "job", job.ID, "err", merr)
		}
		end()
		res.Metrics = metrics
	}
	res.Duration = time.Since(start)
	res.Outcome = OutcomeOf(state, res.Err)
	if ctx.Err() != nil {
		res.Outcome = Interrupted
	}
	return res
}

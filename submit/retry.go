package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/avast/retry-go/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// Retry bounds the retries of job server calls that fail transiently
// (gRPC codes Unavailable, ResourceExhausted and Aborted). The zero value
// means the defaults.
type Retry struct {
	// Attempts is the number of tries of one step; 0 means 5, 1 disables
	// retries.
	Attempts int
	// Delay is the wait before the first retry, doubled for each further
	// one; 0 means one second.
	Delay time.Duration
	// MaxDelay caps the wait between tries; 0 means 15 seconds.
	MaxDelay time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.Delay <= 0 {
		r.Delay = time.Second
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 15 * time.Second
	}
	r.MaxDelay = max(r.MaxDelay, r.Delay)
	return r
}

// budget is how long all waits between tries add up to.
func (r Retry) budget() time.Duration {
	var total time.Duration
	d := r.Delay
	for range r.Attempts - 1 {
		total += min(d, r.MaxDelay)
		d *= 2
	}
	return total
}

// isTransient reports whether a call that failed with code may succeed
// when tried again.
func isTransient(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// attemptsError reports the last error of a step that was tried several
// times; it unwraps to that error.
type attemptsError struct {
	attempts int
	err      error
}

func (e *attemptsError) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.err, e.attempts)
}

func (e *attemptsError) Unwrap() error { return e.err }

// cancelledError is err, which ctx's end caused, matching that cause too.
type cancelledError struct {
	err, cause error
}

func (e *cancelledError) Error() string   { return e.err.Error() }
func (e *cancelledError) Unwrap() []error { return []error{e.err, e.cause} }

// withRetry runs op until it succeeds, fails with an error retryable does
// not accept, runs out of attempts or ctx ends. Delays grow exponentially
// with a little jitter, so clients that failed together do not retry
// together.
func withRetry(ctx context.Context, r Retry, log *slog.Logger, step string, retryable func(error) bool, op func() error) error {
	r = r.withDefaults()
	tries := 0
	var last error
	err := retry.Do(
		func() error {
			tries++
			last = op()
			return last
		},
		retry.Context(ctx),
		retry.Attempts(uint(r.Attempts)),
		retry.Delay(r.Delay),
		retry.MaxDelay(r.MaxDelay),
		retry.MaxJitter(r.Delay/4+1),
		retry.DelayType(retry.CombineDelay(retry.BackOffDelay, retry.RandomDelay)),
		retry.LastErrorOnly(true),
		retry.RetryIf(retryable),
		retry.OnRetry(func(n uint, err error) {
			log.Debug("transient error", "step", step, "attempt", n+1, "of", r.Attempts, "error", err)
		}),
	)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && last != nil && !errors.Is(last, cerr) {
		// gRPC reports a call cut short by ctx with a status that does
		// not match ctx's error; callers look for the latter.
		if c := status.Code(last); c == codes.Canceled || c == codes.DeadlineExceeded {
			return &cancelledError{err: last, cause: cerr}
		}
		// Cancelled while waiting to try again: say what was being retried.
		return fmt.Errorf("%w; the last attempt failed: %w", cerr, last)
	}
	if tries > 1 && retryable(err) {
		return &attemptsError{attempts: tries, err: err}
	}
	return err
}

// transientError accepts the codes isTransient names.
func transientError(err error) bool { return isTransient(status.Code(err)) }

// refusedError accepts the transient codes by which a server says it did
// not act on a call.
func refusedError(err error) bool {
	c := status.Code(err)
	return c == codes.ResourceExhausted || c == codes.Aborted
}

// stateConn is the part of *grpc.ClientConn that tells whether it is
// connected.
type stateConn interface {
	GetState() connectivity.State
	WaitForStateChange(context.Context, connectivity.State) bool
	Connect()
}

var _ stateConn = (*grpc.ClientConn)(nil)

// waitReady waits up to timeout for conn to be connected, so that a call
// made next is not failed merely because the connection is being
// re-established, and reports whether it is. Connections that cannot tell
// are taken as ready.
func waitReady(ctx context.Context, conn grpc.ClientConnInterface, timeout time.Duration) bool {
	sc, ok := conn.(stateConn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st := sc.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.Shutdown:
			return false
		case connectivity.Idle:
			sc.Connect()
		}
		if !sc.WaitForStateChange(ctx, st) {
			return false
		}
	}
}

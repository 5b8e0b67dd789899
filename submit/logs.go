package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The Job API's message stream has no marker between the messages a job
// server replays and those it streams as they come: prism, for one, sends
// the messages it kept (about the last hundred), then the current state, and
// then whatever happens next, ending the stream only when the job is over.
// So a snapshot of the log reads until the stream ends or falls quiet, and
// never longer than a bound, since a busy job need never fall quiet.
const (
	// logsFirstWait allows for the server to open the stream.
	logsFirstWait = 5 * time.Second
	// logsQuiet is the pause after which the replay is taken as complete.
	logsQuiet = time.Second
	// logsSnapshotLimit bounds a snapshot of a job that keeps talking.
	logsSnapshotLimit = 10 * time.Second
)

// Logs passes the job's messages, and the states its message stream
// reports, to onEvent (from the calling goroutine, in arrival order).
//
// With follow, it streams until the job ends, like Follow, and returns nil
// however the job ended. Without, it returns what the job server has now,
// messages without a time of the server's having a zero Time:
// it stops when the server ends the stream (a finished job), when no
// message came for a second, or after ten seconds at most. An unknown job
// is an error matching ErrJobNotFound.
func Logs(ctx context.Context, conn grpc.ClientConnInterface, jobID string, follow bool, onEvent func(Event)) error {
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	if follow {
		_, err := Follow(ctx, conn, jobID, onEvent)
		var failed *JobFailedError
		if errors.As(err, &failed) {
			return nil
		}
		return err
	}
	endpoint := endpointOf(conn)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := jobpb.NewJobServiceClient(conn).GetMessageStream(sctx, &jobpb.JobMessagesRequest{JobId: jobID})
	if err != nil {
		return logsError(conn, jobID, endpoint, err)
	}

	type item struct {
		m   *jobpb.JobMessagesResponse
		err error
	}
	items := make(chan item)
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			select {
			case items <- item{m, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	limit := time.NewTimer(logsSnapshotLimit)
	defer limit.Stop()
	quiet := time.NewTimer(logsFirstWait)
	defer quiet.Stop()
	sawState := false
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading the messages of job %s: %w", jobID, ctx.Err())
		case <-limit.C:
			return nil
		case <-quiet.C:
			return nil
		case it := <-items:
			if it.err != nil {
				if errors.Is(it.err, io.EOF) {
					return nil
				}
				return logsError(conn, jobID, endpoint, it.err)
			}
			if se := it.m.GetStateResponse(); se != nil {
				if !notStarted(se.GetState(), sawState) {
					onEvent(stateEvent(se))
				}
				sawState = true
			} else {
				onEvent(pastMessageEvent(it.m.GetMessageResponse()))
			}
			quiet.Reset(logsQuiet)
		}
	}
}

func logsError(conn grpc.ClientConnInterface, jobID, endpoint string, err error) error {
	switch {
	case isNotFound(err):
		return notFound(jobID, endpoint)
	case status.Code(err) == codes.Unimplemented:
		return fmt.Errorf("job server %s does not stream job messages: %w", endpoint, err)
	}
	return fmt.Errorf("reading the messages of job %s on %s: %w", jobID, endpoint, connErr(conn, err))
}

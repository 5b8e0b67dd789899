package submit

import (
	"context"
	"errors"
	"fmt"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/internal/beam"
)

// Errors that Cancel, Follow and Metrics return match these with errors.Is.
var (
	ErrJobNotFound = errors.New("job not found")
	ErrJobFinished = errors.New("job already finished")
)

// Cancel asks the job server to cancel a job. It checks that the job exists
// first, since some job servers (prism among them) acknowledge cancelling an
// unknown job. Cancellation is asynchronous: Follow the job to see it end.
func Cancel(ctx context.Context, conn grpc.ClientConnInterface, jobID string) error {
	endpoint := endpointOf(conn)
	client := jobpb.NewJobServiceClient(conn)
	st, err := client.GetState(ctx, &jobpb.GetJobStateRequest{JobId: jobID})
	if err != nil {
		if isNotFound(err) {
			return notFound(jobID, endpoint)
		}
		return fmt.Errorf("looking up job %s on %s: %w", jobID, endpoint, connErr(conn, err))
	}
	if beam.Terminal(st.GetState()) {
		return &kindError{msg: fmt.Sprintf("job %s on %s already ended %s; nothing to cancel", jobID, endpoint, st.GetState()), kind: ErrJobFinished}
	}
	if _, err := client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: jobID}); err != nil {
		return fmt.Errorf("cancelling job %s on %s: %w", jobID, endpoint, connErr(conn, err))
	}
	return nil
}

// kindError has its own message and matches one of the sentinel errors.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func notFound(jobID, endpoint string) error {
	return &kindError{msg: fmt.Sprintf("job %s not found on %s: list the jobs there for the id", jobID, endpoint), kind: ErrJobNotFound}
}

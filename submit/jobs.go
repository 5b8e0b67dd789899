package submit

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// JobInfo is what a job server tells about one job.
type JobInfo struct {
	ID    string
	Name  string
	State jobpb.JobState_Enum
	// StateTime is when the job entered State; zero when the job server
	// does not say (GetJobs does not).
	StateTime time.Time
	// Options are the pipeline options the job was submitted with, as the
	// job server holds them.
	Options map[string]any
}

// LogValue keeps options, which may be large, out of log records.
func (j JobInfo) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", j.ID), slog.String("name", j.Name), slog.String("state", j.State.String()))
}

func jobInfo(pb *jobpb.JobInfo) JobInfo {
	return JobInfo{
		ID:      pb.GetJobId(),
		Name:    pb.GetJobName(),
		State:   pb.GetState(),
		Options: pb.GetPipelineOptions().AsMap(),
	}
}

// ListJobs returns the jobs the job server knows, ordered by id.
func ListJobs(ctx context.Context, conn grpc.ClientConnInterface) ([]JobInfo, error) {
	resp, err := jobpb.NewJobServiceClient(conn).GetJobs(ctx, &jobpb.GetJobsRequest{})
	if status.Code(err) == codes.Unimplemented {
		return nil, unsupported(endpointOf(conn), "list its jobs", "GetJobs", err)
	}
	if err != nil {
		return nil, fmt.Errorf("listing jobs on %s: %w", endpointOf(conn), connErr(conn, err))
	}
	jobs := make([]JobInfo, 0, len(resp.GetJobInfo()))
	for _, j := range resp.GetJobInfo() {
		jobs = append(jobs, jobInfo(j))
	}
	slices.SortFunc(jobs, func(a, b JobInfo) int { return naturalCompare(a.ID, b.ID) })
	return jobs, nil
}

// naturalCompare orders strings with runs of digits compared by value, so
// that job-9 comes before job-10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// JobStatus returns what the job server tells about the job: its state
// and the time it entered it, and, where the server lists the job, its name
// and options. An unknown job is an error matching ErrJobNotFound.
func JobStatus(ctx context.Context, conn grpc.ClientConnInterface, jobID string) (JobInfo, error) {
	endpoint := endpointOf(conn)
	client := jobpb.NewJobServiceClient(conn)
	st, err := client.GetState(ctx, &jobpb.GetJobStateRequest{JobId: jobID})
	if err != nil {
		if isNotFound(err) {
			return JobInfo{}, notFound(jobID, endpoint)
		}
		return JobInfo{}, fmt.Errorf("looking up job %s on %s: %w", jobID, endpoint, connErr(conn, err))
	}
	info := JobInfo{ID: jobID, State: st.GetState()}
	if ts := st.GetTimestamp(); ts != nil {
		info.StateTime = ts.AsTime()
	}
	// Name and options come only with the list; a server that cannot list
	// its jobs still gave the state.
	if resp, err := client.GetJobs(ctx, &jobpb.GetJobsRequest{}); err == nil {
		for _, j := range resp.GetJobInfo() {
			if j.GetJobId() == jobID {
				listed := jobInfo(j)
				info.Name, info.Options = listed.Name, listed.Options
				break
			}
		}
	}
	return info, nil
}

// PipelineOf returns the pipeline the job server holds for the job, e.g.
// to check the environment it received.
func PipelineOf(ctx context.Context, conn grpc.ClientConnInterface, jobID string) (*pipepb.Pipeline, error) {
	resp, err := jobpb.NewJobServiceClient(conn).GetPipeline(ctx, &jobpb.GetJobPipelineRequest{JobId: jobID}, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		if isNotFound(err) {
			return nil, notFound(jobID, endpointOf(conn))
		}
		return nil, fmt.Errorf("fetching the pipeline of job %s from %s: %w", jobID, endpointOf(conn), connErr(conn, err))
	}
	return resp.GetPipeline(), nil
}

// connErr marks an error that means the job server could not be reached,
// so callers can tell it from the server's own errors with ErrUnreachable.
func connErr(conn grpc.ClientConnInterface, err error) error {
	if status.Code(err) != codes.Unavailable {
		return err
	}
	return &DialError{Endpoint: endpointOf(conn), Kind: ErrUnreachable, Cause: err, msg: "the job server does not answer (" + connectionCause(err) + ")"}
}

// unsupported says that the job server lacks a Job API method, as job
// servers of older Beam releases do, rather than quoting gRPC's status.
func unsupported(endpoint, what, method string, err error) error {
	return &kindError{msg: fmt.Sprintf("job server %s cannot %s: it does not implement the Job API's %s", endpoint, what, method), kind: err}
}

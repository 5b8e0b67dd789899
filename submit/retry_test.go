package submit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/grpctest"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/submit"
)

// flakyJobs is a job service that fails the first calls of each step with
// the errors it is given, then works: it takes a pipeline, pulls its worker
// artifact through the reverse staging protocol and runs it.
type flakyJobs struct {
	jobpb.UnimplementedJobServiceServer
	jobpb.UnimplementedArtifactStagingServiceServer
	artifact *pipepb.ArtifactInformation
	// onPrepare, if set, is called at every Prepare with the call's
	// context on the server.
	onPrepare func(ctx context.Context)

	mu                              sync.Mutex
	prepareErrs, stageErrs, runErrs []error
	prepares, stagings, runs        int
	staged                          map[string]string // preparation id -> sha256 of what was staged
	ran                             []string          // preparation ids
}

func pop(errs *[]error) error {
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (f *flakyJobs) Prepare(ctx context.Context, _ *jobpb.PrepareJobRequest) (*jobpb.PrepareJobResponse, error) {
	if f.onPrepare != nil {
		f.onPrepare(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepares++
	if err := pop(&f.prepareErrs); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("prep-%d", f.prepares)
	return &jobpb.PrepareJobResponse{PreparationId: id, StagingSessionToken: id}, nil
}

func (f *flakyJobs) ReverseArtifactRetrievalService(stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.stagings++
	err = pop(&f.stageErrs)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	err = stream.Send(&jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_GetArtifact{
		GetArtifact: &jobpb.GetArtifactRequest{Artifact: f.artifact},
	}})
	if err != nil {
		return err
	}
	h := sha256.New()
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		h.Write(resp.GetGetArtifactResponse().GetData())
		if resp.GetIsLast() {
			break
		}
	}
	f.mu.Lock()
	f.staged[first.GetStagingToken()] = hex.EncodeToString(h.Sum(nil))
	f.mu.Unlock()
	return nil
}

func (f *flakyJobs) Run(_ context.Context, req *jobpb.RunJobRequest) (*jobpb.RunJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	if err := pop(&f.runErrs); err != nil {
		return nil, err
	}
	if _, ok := f.staged[req.GetPreparationId()]; !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "preparation %s has not staged its artifacts", req.GetPreparationId())
	}
	f.ran = append(f.ran, req.GetPreparationId())
	return &jobpb.RunJobResponse{JobId: "job-" + req.GetPreparationId()}, nil
}

func serveFlaky(t *testing.T, f *flakyJobs) *grpc.ClientConn {
	t.Helper()
	return grpctest.Serve(t, "flaky-jobs", func(srv *grpc.Server) {
		jobpb.RegisterJobServiceServer(srv, f)
		jobpb.RegisterArtifactStagingServiceServer(srv, f)
	})
}

// fakeCaptured is a pipeline whose Go environment declares a small worker
// file.
func fakeCaptured(t *testing.T) (*capture.Captured, *pipepb.ArtifactInformation) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "worker")
	if err := os.WriteFile(path, []byte(strings.Repeat("worker bytes ", 1<<16)), 0o755); err != nil {
		t.Fatal(err)
	}
	ds, err := digest.File(context.Background(), path)
	sum := ds.SHA256
	if err != nil {
		t.Fatal(err)
	}
	f := beam.File{Path: path, SHA256: sum}
	art := beam.FileArtifact(f, beam.GoWorkerRoleURN)
	p := &pipepb.Pipeline{Components: &pipepb.Components{Environments: map[string]*pipepb.Environment{
		"go": {Urn: beam.ExternalEnvURN, Dependencies: []*pipepb.ArtifactInformation{art}},
	}}}
	return &capture.Captured{Pipeline: p, JobName: "flaky", Worker: f}, art
}

func TestSubmitRetries(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "job server restarting")
	exhausted := status.Error(codes.ResourceExhausted, "too many jobs")
	aborted := status.Error(codes.Aborted, "conflict")
	quick := submit.Retry{Attempts: 3, Delay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	tests := []struct {
		name                     string
		prepareErrs, stageErrs   []error
		runErrs                  []error
		retry                    submit.Retry
		wantPrepares, wantStages int
		wantRuns                 int
		wantErr                  string
		wantCode                 codes.Code
	}{
		{name: "no faults", wantPrepares: 1, wantStages: 1, wantRuns: 1},
		{name: "prepare unavailable twice", prepareErrs: []error{unavailable, unavailable}, wantPrepares: 3, wantStages: 1, wantRuns: 1},
		{name: "staging unavailable twice starts over", stageErrs: []error{unavailable, exhausted}, wantPrepares: 3, wantStages: 3, wantRuns: 1},
		{name: "run refused twice", runErrs: []error{exhausted, aborted}, wantPrepares: 1, wantStages: 1, wantRuns: 3},
		{
			name: "prepare keeps failing", prepareErrs: []error{unavailable, unavailable, unavailable, unavailable},
			wantPrepares: 3, wantErr: "job server passthrough:///flaky-jobs rejected the pipeline: rpc error: code = Unavailable desc = job server restarting (gave up after 3 attempts)", wantCode: codes.Unavailable,
		},
		{
			name: "staging keeps failing", stageErrs: []error{aborted, aborted, aborted},
			wantPrepares: 3, wantStages: 3, wantErr: "staging artifacts to passthrough:///flaky-jobs: artifact staging session ended by the job server: rpc error: code = Aborted desc = conflict (gave up after 3 attempts)", wantCode: codes.Aborted,
		},
		{
			name: "a run that may have happened is not repeated", runErrs: []error{unavailable},
			wantPrepares: 1, wantStages: 1, wantRuns: 1, wantErr: "job server passthrough:///flaky-jobs did not confirm the run of preparation prep-1, which may have started anyway", wantCode: codes.Unavailable,
		},
		{
			name: "other errors are not retried", prepareErrs: []error{status.Error(codes.InvalidArgument, "bad pipeline")},
			wantPrepares: 1, wantErr: "job server passthrough:///flaky-jobs rejected the pipeline: rpc error: code = InvalidArgument desc = bad pipeline", wantCode: codes.InvalidArgument,
		},
		{
			name: "one attempt", retry: submit.Retry{Attempts: 1}, prepareErrs: []error{unavailable},
			wantPrepares: 1, wantErr: "rejected the pipeline: rpc error: code = Unavailable desc = job server restarting", wantCode: codes.Unavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, art := fakeCaptured(t)
			f := &flakyJobs{artifact: art, prepareErrs: tt.prepareErrs, stageErrs: tt.stageErrs, runErrs: tt.runErrs, staged: map[string]string{}}
			conn := serveFlaky(t, f)
			r := quick
			if tt.retry != (submit.Retry{}) {
				r = tt.retry
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			job, err := submit.Submit(ctx, conn, c, submit.SubmitOptions{Retry: r})
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.prepares != tt.wantPrepares || f.stagings != tt.wantStages || f.runs != tt.wantRuns {
				t.Errorf("calls: %d Prepare, %d staging sessions, %d Run; want %d, %d, %d", f.prepares, f.stagings, f.runs, tt.wantPrepares, tt.wantStages, tt.wantRuns)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || status.Code(err) != tt.wantCode {
					t.Fatalf("Submit = %v; want code %v saying %q", err, tt.wantCode, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			last := fmt.Sprintf("prep-%d", f.prepares)
			if job.ID != "job-"+last || len(f.ran) != 1 || f.ran[0] != last {
				t.Errorf("job %s, ran %v; want one run of the last preparation %s", job.ID, f.ran, last)
			}
			if f.staged[last] != c.Worker.SHA256 {
				t.Errorf("staged sha256 %s; want %s", f.staged[last], c.Worker.SHA256)
			}
		})
	}
}

func TestSubmitRetryCancelled(t *testing.T) {
	tests := []struct {
		name string
		// duringCall cancels inside Prepare rather than while Submit waits
		// an hour to try Prepare again.
		duringCall bool
		wantMsg    string
	}{
		{name: "while waiting to retry", wantMsg: "context canceled; the last attempt failed: job server passthrough:///flaky-jobs rejected the pipeline: rpc error: code = Unavailable desc = job server restarting"},
		{name: "during a call", duringCall: true, wantMsg: "job server passthrough:///flaky-jobs rejected the pipeline: rpc error: code = Canceled desc = context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, art := fakeCaptured(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &flakyJobs{artifact: art, staged: map[string]string{},
				prepareErrs: []error{status.Error(codes.Unavailable, "job server restarting")}}
			logger := slog.New(slog.DiscardHandler)
			if tt.duringCall {
				// The server answers only once the client gave up and
				// the call ended for the server too: an answer sent
				// sooner could beat the cancellation to the client.
				f.onPrepare = func(call context.Context) {
					cancel()
					<-call.Done()
				}
			} else {
				waiting := make(chan struct{}, 1)
				go func() {
					<-waiting
					cancel()
				}()
				logger = slog.New(signalHandler{msg: "transient error", ch: waiting})
			}
			conn := serveFlaky(t, f)
			start := time.Now()
			_, err := submit.Submit(ctx, conn, c, submit.SubmitOptions{Retry: submit.Retry{Delay: time.Hour}, Logger: logger})
			if !errors.Is(err, context.Canceled) || err.Error() != tt.wantMsg {
				t.Errorf("Submit = %v; want context.Canceled saying %q", err, tt.wantMsg)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Submit took %v after cancellation", took)
			}
		})
	}
}

// TestSubmitChangedWorkerIsNotRetried guards the boundary of retries: a
// staging session the client aborts because the worker changed is not
// transient.
func TestSubmitChangedWorkerIsNotRetried(t *testing.T) {
	c, art := fakeCaptured(t)
	f := &flakyJobs{artifact: art, staged: map[string]string{}}
	conn := serveFlaky(t, f)
	// The file changes after Submit checked it, while the server waits.
	f.onPrepare = func(context.Context) {
		if err := os.WriteFile(c.Worker.Path, []byte("rebuilt"), 0o755); err != nil {
			t.Error(err)
		}
	}
	_, err := submit.Submit(context.Background(), conn, c, submit.SubmitOptions{Retry: submit.Retry{Delay: time.Millisecond}})
	var mm *stage.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("Submit = %v; want a MismatchError", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prepares != 1 {
		t.Errorf("%d Prepare calls; want 1", f.prepares)
	}
}

// downAtRun is a connection that is down by the time Submit runs the job:
// gRPC fails calls on such a connection without sending them.
type downAtRun struct {
	*grpc.ClientConn
}

const runMethod = "/org.apache.beam.model.job_management.v1.JobService/Run"

func (c downAtRun) GetState() connectivity.State { return connectivity.TransientFailure }

func (c downAtRun) WaitForStateChange(ctx context.Context, _ connectivity.State) bool {
	<-ctx.Done()
	return false
}

func (c downAtRun) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if method == runMethod {
		return status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.1:8099: connect: connection refused"`)
	}
	return c.ClientConn.Invoke(ctx, method, args, reply, opts...)
}

func TestSubmitConnectionDownAtRun(t *testing.T) {
	c, art := fakeCaptured(t)
	f := &flakyJobs{artifact: art, staged: map[string]string{}}
	conn := downAtRun{serveFlaky(t, f)}
	_, err := submit.Submit(context.Background(), conn, c, submit.SubmitOptions{Retry: submit.Retry{Delay: 10 * time.Millisecond, Attempts: 2}})
	want := "job server passthrough:///flaky-jobs went away before the job could be run: the job server does not answer (dial tcp 10.0.0.1:8099: connect: connection refused)"
	if !errors.Is(err, submit.ErrUnreachable) || err == nil || err.Error() != want {
		t.Errorf("Submit = %v; want ErrUnreachable saying %q", err, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs != 0 {
		t.Errorf("the job server got %d Run calls; want none", f.runs)
	}
}

package grpctest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/beam"
)

// The identifiers a JobServer hands out: it runs one job.
const (
	JobID         = "job-1"
	PreparationID = "prep-1"
	StagingToken  = "token-1"
)

// Job scripts the one job of a JobServer. The zero value is a job that
// runs until it is cancelled.
type Job struct {
	// States are what the state stream sends, in order.
	States []jobpb.JobState_Enum
	// StatesEnd is how the state stream ends after States: nil ends it
	// with the job, as a runner does — at once if the last of States is
	// terminal, or with CANCELLED once a cancellation takes — and keeps it
	// open while the job runs on; io.EOF ends it at once without error;
	// any other error ends it with that error (a runner that lost the
	// job, a connection that broke).
	StatesEnd error
	// Messages are what the message stream sends, in order: job messages
	// (Message) and states (StateMessage).
	Messages []*jobpb.JobMessagesResponse
	// MessagesEnd is how the message stream ends after Messages, as
	// StatesEnd says; a status with code Unimplemented is a runner without
	// a message stream.
	MessagesEnd error
	// IgnoreCancel acknowledges cancellations that never take: the job
	// runs on.
	IgnoreCancel bool
	// Metrics are what GetJobMetrics answers; nil: none.
	Metrics *jobpb.MetricResults
	// HangMetrics leaves GetJobMetrics unanswered until the client gives
	// up.
	HangMetrics bool
	// PrepareErr, if set, is Prepare's answer: the pipeline is refused.
	PrepareErr error
}

// StagedFile is an artifact a JobServer received over the reverse
// retrieval protocol.
type StagedFile struct {
	// Path is the artifact's path as the pipeline declares it.
	Path string
	// SHA256 and Size are of the bytes received.
	SHA256 string
	Size   int64
}

// JobServer is a Beam job server for one job, JobID, scripted by a Job: it
// prepares a pipeline, stages the pipeline's file artifacts as job servers
// do (resolve, then get each, from the client over the reverse retrieval
// protocol), runs it, and plays the script on its streams. It counts the
// calls it receives, for tests to check which were made.
type JobServer struct {
	jobpb.UnimplementedJobServiceServer
	jobpb.UnimplementedArtifactStagingServiceServer
	job Job

	cancelRequested chan struct{} // closed by the first Cancel
	cancelTook      chan struct{} // closed when a cancellation takes
	ended           chan struct{} // closed when the job is in a terminal state
	followed        chan struct{} // closed when the state stream opens
	once            struct{ cancel, took, followed sync.Once }

	mu       sync.Mutex
	calls    map[string]int
	prepared *jobpb.PrepareJobRequest
	staged   []StagedFile
	workerID []string
}

// ServeJobs serves a JobServer for job, with its artifact staging service
// on the same connection, for the length of the test.
func ServeJobs(t testing.TB, job Job) (*JobServer, *grpc.ClientConn) {
	t.Helper()
	s := &JobServer{
		job:             job,
		cancelRequested: make(chan struct{}),
		cancelTook:      make(chan struct{}),
		ended:           make(chan struct{}),
		followed:        make(chan struct{}),
		calls:           map[string]int{},
	}
	if n := len(job.States); n > 0 && beam.Terminal(job.States[n-1]) {
		close(s.ended)
	}
	conn := Serve(t, "fake-jobs", func(srv *grpc.Server) {
		jobpb.RegisterJobServiceServer(srv, s)
		jobpb.RegisterArtifactStagingServiceServer(srv, s)
	})
	return s, conn
}

// Message is a job message for Job.Messages.
func Message(importance jobpb.JobMessage_MessageImportance, text string) *jobpb.JobMessagesResponse {
	return &jobpb.JobMessagesResponse{Response: &jobpb.JobMessagesResponse_MessageResponse{
		MessageResponse: &jobpb.JobMessage{Importance: importance, MessageText: text},
	}}
}

// StateMessage is a state change on the message stream, for Job.Messages.
func StateMessage(s jobpb.JobState_Enum) *jobpb.JobMessagesResponse {
	return &jobpb.JobMessagesResponse{Response: &jobpb.JobMessagesResponse_StateResponse{
		StateResponse: &jobpb.JobStateEvent{State: s},
	}}
}

// Calls is how many times the method (its RPC name, e.g. "Cancel") was
// called.
func (s *JobServer) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// AllCalls is how many times each method was called.
func (s *JobServer) AllCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Prepared is the request the pipeline was prepared with; nil before.
func (s *JobServer) Prepared() *jobpb.PrepareJobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prepared
}

// Staged lists the artifacts received, in the order they were.
func (s *JobServer) Staged() []StagedFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.staged)
}

// StagingWorkerID is the worker_id metadata of the last staging session.
func (s *JobServer) StagingWorkerID() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workerID
}

// CancelRequested is closed by the first Cancel, whether it takes or not.
func (s *JobServer) CancelRequested() <-chan struct{} { return s.cancelRequested }

// Followed is closed once a client opens the state stream.
func (s *JobServer) Followed() <-chan struct{} { return s.followed }

func (s *JobServer) record(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
}

func (s *JobServer) known(id string) error {
	if id != JobID {
		return status.Errorf(codes.NotFound, "job %q not found", id)
	}
	return nil
}

// state is the job's current state: a cancellation's end, else the last
// of the script's states.
func (s *JobServer) state() jobpb.JobState_Enum {
	select {
	case <-s.cancelTook:
		return jobpb.JobState_CANCELLED
	default:
	}
	if n := len(s.job.States); n > 0 {
		return s.job.States[n-1]
	}
	return jobpb.JobState_RUNNING
}

func (s *JobServer) Prepare(_ context.Context, req *jobpb.PrepareJobRequest) (*jobpb.PrepareJobResponse, error) {
	s.record("Prepare")
	if s.job.PrepareErr != nil {
		return nil, s.job.PrepareErr
	}
	s.mu.Lock()
	s.prepared = req
	s.mu.Unlock()
	return &jobpb.PrepareJobResponse{PreparationId: PreparationID, StagingSessionToken: StagingToken}, nil
}

func (s *JobServer) Run(_ context.Context, req *jobpb.RunJobRequest) (*jobpb.RunJobResponse, error) {
	s.record("Run")
	if req.GetPreparationId() != PreparationID || s.Prepared() == nil {
		return nil, status.Errorf(codes.NotFound, "preparation %q not found", req.GetPreparationId())
	}
	return &jobpb.RunJobResponse{JobId: JobID}, nil
}

func (s *JobServer) GetState(_ context.Context, req *jobpb.GetJobStateRequest) (*jobpb.JobStateEvent, error) {
	s.record("GetState")
	if err := s.known(req.GetJobId()); err != nil {
		return nil, err
	}
	return &jobpb.JobStateEvent{State: s.state()}, nil
}

func (s *JobServer) Cancel(_ context.Context, req *jobpb.CancelJobRequest) (*jobpb.CancelJobResponse, error) {
	s.record("Cancel")
	if err := s.known(req.GetJobId()); err != nil {
		return nil, err
	}
	s.once.cancel.Do(func() { close(s.cancelRequested) })
	if beam.Terminal(s.state()) {
		return &jobpb.CancelJobResponse{State: s.state()}, nil
	}
	if !s.job.IgnoreCancel {
		s.once.took.Do(func() {
			close(s.cancelTook)
			close(s.ended)
		})
	}
	return &jobpb.CancelJobResponse{State: jobpb.JobState_CANCELLING}, nil
}

func (s *JobServer) GetStateStream(req *jobpb.GetJobStateRequest, stream jobpb.JobService_GetStateStreamServer) error {
	s.record("GetStateStream")
	if err := s.known(req.GetJobId()); err != nil {
		return err
	}
	s.once.followed.Do(func() { close(s.followed) })
	for _, st := range s.job.States {
		if err := stream.Send(&jobpb.JobStateEvent{State: st}); err != nil {
			return err
		}
	}
	if s.job.StatesEnd != nil {
		return s.end(stream.Context(), s.job.StatesEnd)
	}
	if err := s.end(stream.Context(), nil); err != nil {
		return err
	}
	select {
	case <-s.cancelTook:
		return stream.Send(&jobpb.JobStateEvent{State: jobpb.JobState_CANCELLED})
	default:
		return nil
	}
}

func (s *JobServer) GetMessageStream(req *jobpb.JobMessagesRequest, stream jobpb.JobService_GetMessageStreamServer) error {
	s.record("GetMessageStream")
	if status.Code(s.job.MessagesEnd) == codes.Unimplemented {
		return s.job.MessagesEnd
	}
	if err := s.known(req.GetJobId()); err != nil {
		return err
	}
	for _, m := range s.job.Messages {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return s.end(stream.Context(), s.job.MessagesEnd)
}

// end ends a stream as a Job's StatesEnd or MessagesEnd says; for nil, it
// returns once the job has ended or the client has gone.
func (s *JobServer) end(ctx context.Context, how error) error {
	switch {
	case errors.Is(how, io.EOF):
		return nil
	case how != nil:
		return how
	}
	select {
	case <-s.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *JobServer) GetJobMetrics(ctx context.Context, req *jobpb.GetJobMetricsRequest) (*jobpb.GetJobMetricsResponse, error) {
	s.record("GetJobMetrics")
	if err := s.known(req.GetJobId()); err != nil {
		return nil, err
	}
	if s.job.HangMetrics {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	m := s.job.Metrics
	if m == nil {
		m = &jobpb.MetricResults{}
	}
	return &jobpb.GetJobMetricsResponse{Metrics: m}, nil
}

func (s *JobServer) GetPipeline(_ context.Context, req *jobpb.GetJobPipelineRequest) (*jobpb.GetJobPipelineResponse, error) {
	s.record("GetPipeline")
	if err := s.known(req.GetJobId()); err != nil {
		return nil, err
	}
	return &jobpb.GetJobPipelineResponse{Pipeline: s.Prepared().GetPipeline()}, nil
}

// ReverseArtifactRetrievalService asks the client for every artifact of the
// prepared pipeline's environments, as prism does: resolve them all, then
// get each resolved one.
func (s *JobServer) ReverseArtifactRetrievalService(stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
	s.record("ReverseArtifactRetrievalService")
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.mu.Lock()
	s.workerID = md.Get("worker_id")
	s.mu.Unlock()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetStagingToken() != StagingToken {
		return status.Errorf(codes.InvalidArgument, "unknown staging token %q", first.GetStagingToken())
	}
	envs := s.Prepared().GetPipeline().GetComponents().GetEnvironments()
	var deps []*pipepb.ArtifactInformation
	for _, id := range slices.Sorted(maps.Keys(envs)) {
		deps = append(deps, envs[id].GetDependencies()...)
	}
	if len(deps) == 0 {
		return nil
	}
	if err := stream.Send(&jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_ResolveArtifact{
		ResolveArtifact: &jobpb.ResolveArtifactsRequest{Artifacts: deps},
	}}); err != nil {
		return err
	}
	resolved, err := stream.Recv()
	if err != nil {
		return err
	}
	for _, a := range resolved.GetResolveArtifactResponse().GetReplacements() {
		if err := stream.Send(&jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_GetArtifact{
			GetArtifact: &jobpb.GetArtifactRequest{Artifact: a},
		}}); err != nil {
			return err
		}
		f, err := beam.FilePayload(a)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		h := sha256.New()
		var n int64
		for {
			in, err := stream.Recv()
			if err != nil {
				// The client aborts a session by ending it without is_last.
				return err
			}
			if in.GetIsLast() {
				break
			}
			d := in.GetGetArtifactResponse().GetData()
			h.Write(d)
			n += int64(len(d))
		}
		s.mu.Lock()
		s.staged = append(s.staged, StagedFile{Path: f.Path, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n})
		s.mu.Unlock()
	}
	return nil
}

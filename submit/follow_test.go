package submit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/submit"
)

// scriptedJobs is a job service whose streams follow a script, for the
// faults a real job server does not produce on demand. A nil error ends a
// stream normally; errBlock keeps it open until the client goes away.
type scriptedJobs struct {
	jobpb.UnimplementedJobServiceServer
	states      []jobpb.JobState_Enum
	stateEnd    error
	messages    []*jobpb.JobMessagesResponse
	messagesEnd error
}

var errBlock = errors.New("block")

func (s *scriptedJobs) GetStateStream(_ *jobpb.GetJobStateRequest, stream jobpb.JobService_GetStateStreamServer) error {
	for _, st := range s.states {
		if err := stream.Send(&jobpb.JobStateEvent{State: st}); err != nil {
			return err
		}
	}
	return end(stream.Context(), s.stateEnd)
}

func (s *scriptedJobs) GetMessageStream(_ *jobpb.JobMessagesRequest, stream jobpb.JobService_GetMessageStreamServer) error {
	for _, m := range s.messages {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return end(stream.Context(), s.messagesEnd)
}

func end(ctx context.Context, err error) error {
	if err == errBlock {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func msg(importance jobpb.JobMessage_MessageImportance, text string) *jobpb.JobMessagesResponse {
	return &jobpb.JobMessagesResponse{Response: &jobpb.JobMessagesResponse_MessageResponse{
		MessageResponse: &jobpb.JobMessage{Importance: importance, MessageText: text},
	}}
}

func stateMsg(s jobpb.JobState_Enum) *jobpb.JobMessagesResponse {
	return &jobpb.JobMessagesResponse{Response: &jobpb.JobMessagesResponse_StateResponse{
		StateResponse: &jobpb.JobStateEvent{State: s},
	}}
}

func serveJobs(t *testing.T, s jobpb.JobServiceServer) *grpc.ClientConn {
	t.Helper()
	return grpctest.Serve(t, "fake-jobs", func(srv *grpc.Server) { jobpb.RegisterJobServiceServer(srv, s) })
}

func TestFollowScripted(t *testing.T) {
	const (
		basic = jobpb.JobMessage_JOB_MESSAGE_BASIC
		errm  = jobpb.JobMessage_JOB_MESSAGE_ERROR
	)
	S, R, D, F := jobpb.JobState_STARTING, jobpb.JobState_RUNNING, jobpb.JobState_DONE, jobpb.JobState_FAILED
	unregistered, err := os.ReadFile(filepath.Join("testdata", "failures", "unregistered.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		jobs       *scriptedJobs
		wantState  jobpb.JobState_Enum
		wantErr    string
		wantStates []string
		wantTexts  []string
		// wantCauses are the functions the messages' causes name.
		wantCauses []string
	}{
		{
			name:       "states from both streams are reported once",
			jobs:       &scriptedJobs{states: []jobpb.JobState_Enum{R, D}, messages: []*jobpb.JobMessagesResponse{stateMsg(R), msg(basic, "hello"), stateMsg(D)}},
			wantState:  D,
			wantStates: []string{"RUNNING", "DONE"},
			wantTexts:  []string{"hello"},
		},
		{
			name: "a state seen before does not come back",
			jobs: &scriptedJobs{
				stateEnd: status.Error(codes.Unimplemented, "no state stream"),
				messages: []*jobpb.JobMessagesResponse{stateMsg(S), stateMsg(R), stateMsg(S), stateMsg(D)},
			},
			wantState:  D,
			wantStates: []string{"STARTING", "RUNNING", "DONE"},
		},
		{
			name:       "runner without a message stream",
			jobs:       &scriptedJobs{states: []jobpb.JobState_Enum{R, D}, messagesEnd: status.Error(codes.Unimplemented, "no messages here")},
			wantState:  D,
			wantStates: []string{"RUNNING", "DONE"},
		},
		{
			name: "failure cause arrives after the FAILED state",
			jobs: &scriptedJobs{states: []jobpb.JobState_Enum{R, F}, messages: []*jobpb.JobMessagesResponse{
				msg(basic, "starting"), stateMsg(R), stateMsg(F), msg(errm, "worker said: boom"), msg(basic, "cleaning up"),
			}},
			wantState: F,
			wantErr:   "job j1 failed: worker said: boom",
			wantTexts: []string{"starting", "worker said: boom", "cleaning up"},
		},
		{
			name: "a failure's message and error carry its cause",
			jobs: &scriptedJobs{states: []jobpb.JobState_Enum{R, F}, messages: []*jobpb.JobMessagesResponse{
				msg(basic, "one line\n"), stateMsg(R), stateMsg(F), msg(errm, string(unregistered)),
			}},
			wantState:  F,
			wantErr:    "job j1 failed: in transform main.shout: main.shout not found. Register DoFns and functions with the beam/register package: register it in an init function",
			wantCauses: []string{"main.shout"},
		},
		{
			name:      "failure without an error message uses the last message",
			jobs:      &scriptedJobs{states: []jobpb.JobState_Enum{R, F}, messages: []*jobpb.JobMessagesResponse{msg(basic, "worker lost")}},
			wantState: F,
			wantErr:   "job j1 failed: worker lost",
		},
		{
			// Flink's and Spark's job servers replay a job's history, which
			// begins with STOPPED (not started yet), and end the message
			// stream at the terminal state.
			name: "history that starts with STOPPED, as Java job servers send it",
			jobs: &scriptedJobs{
				states:   []jobpb.JobState_Enum{jobpb.JobState_STOPPED, S, R, D},
				messages: []*jobpb.JobMessagesResponse{stateMsg(jobpb.JobState_STOPPED), stateMsg(S), stateMsg(R), stateMsg(D)},
			},
			wantState:  D,
			wantStates: []string{"STARTING", "RUNNING", "DONE"},
		},
		{
			name:      "state stream breaks",
			jobs:      &scriptedJobs{states: []jobpb.JobState_Enum{R}, stateEnd: status.Error(codes.Unavailable, "connection lost"), messagesEnd: errBlock},
			wantState: R,
			wantErr:   "lost track of job j1 on passthrough:///fake-jobs: the job server stopped answering (connection lost); the job may still be running there",
		},
		{
			name:      "streams end before the job does",
			jobs:      &scriptedJobs{states: []jobpb.JobState_Enum{R}, messages: []*jobpb.JobMessagesResponse{stateMsg(R)}},
			wantState: R,
			wantErr:   "job j1 on passthrough:///fake-jobs: the job server closed its streams before the job finished (last state RUNNING)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := serveJobs(t, tt.jobs)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var states, texts, causes []string
			state, err := submit.Follow(ctx, conn, "j1", func(e submit.Event) {
				if e.Kind == submit.EventState {
					states = append(states, e.State)
				} else {
					texts = append(texts, e.Text)
				}
				if e.Cause != nil {
					causes = append(causes, e.Cause.Function)
				}
			})
			if state != tt.wantState {
				t.Errorf("state = %v; want %v", state, tt.wantState)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error = %v; want %q", err, tt.wantErr)
			}
			if strings.Contains(tt.wantErr, "stopped answering") && !errors.Is(err, submit.ErrUnreachable) {
				t.Errorf("error %v does not match ErrUnreachable", err)
			}
			if tt.wantStates != nil && !reflect.DeepEqual(states, tt.wantStates) {
				t.Errorf("state events = %v; want %v", states, tt.wantStates)
			}
			if tt.wantTexts != nil && !reflect.DeepEqual(texts, tt.wantTexts) {
				t.Errorf("messages = %v; want %v", texts, tt.wantTexts)
			}
			if !slices.Equal(causes, tt.wantCauses) {
				t.Errorf("causes name %q; want %q", causes, tt.wantCauses)
			}
			var failed *submit.JobFailedError
			if errors.As(err, &failed) && failed.Cause == nil {
				t.Errorf("failure %+v has no cause", failed)
			}
		})
	}
}

func TestFollowContextCancelled(t *testing.T) {
	conn := serveJobs(t, &scriptedJobs{states: []jobpb.JobState_Enum{jobpb.JobState_RUNNING}, stateEnd: errBlock, messagesEnd: errBlock})
	ctx, cancel := context.WithCancel(context.Background())
	state, err := submit.Follow(ctx, conn, "j1", func(e submit.Event) {
		if e.State == "RUNNING" {
			cancel()
		}
	})
	if state != jobpb.JobState_RUNNING || !errors.Is(err, context.Canceled) {
		t.Errorf("Follow = %v, %v; want RUNNING and context.Canceled", state, err)
	}
}

// TestLogsJavaHistory reads a finished job's log as Flink's and Spark's job
// servers replay it: the state history from STOPPED (not started yet),
// messages, and the end of the stream at the terminal state.
func TestLogsJavaHistory(t *testing.T) {
	conn := serveJobs(t, &scriptedJobs{messages: []*jobpb.JobMessagesResponse{
		stateMsg(jobpb.JobState_STOPPED), stateMsg(jobpb.JobState_STARTING), stateMsg(jobpb.JobState_RUNNING),
		msg(jobpb.JobMessage_JOB_MESSAGE_BASIC, "hello"), stateMsg(jobpb.JobState_DONE),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []string
	err := submit.Logs(ctx, conn, "j1", false, func(e submit.Event) { got = append(got, e.State+e.Text) })
	if want := []string{"STARTING", "RUNNING", "hello", "DONE"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Logs = %v, events %q; want nil, %q", err, got, want)
	}
}

// TestUnimplementedJobAPI: a job server that lacks a method (older Beam
// releases lack some) gets a sentence, not gRPC's status text.
func TestUnimplementedJobAPI(t *testing.T) {
	conn := serveJobs(t, &scriptedJobs{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := submit.ListJobs(ctx, conn); err == nil || err.Error() != "job server passthrough:///fake-jobs cannot list its jobs: it does not implement the Job API's GetJobs" {
		t.Errorf("ListJobs = %v", err)
	}
	if _, err := submit.Metrics(ctx, conn, "j1"); err == nil || err.Error() != "job server passthrough:///fake-jobs cannot report job metrics: it does not implement the Job API's GetJobMetrics" {
		t.Errorf("Metrics = %v", err)
	}
}

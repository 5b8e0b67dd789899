package submit_test

import (
	"context"
	"errors"
	"io"
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
		jobs       grpctest.Job
		wantState  jobpb.JobState_Enum
		wantErr    string
		wantStates []string
		wantTexts  []string
		// wantCauses are the functions the messages' causes name.
		wantCauses []string
	}{
		{
			name:       "states from both streams are reported once",
			jobs:       grpctest.Job{States: []jobpb.JobState_Enum{R, D}, Messages: []*jobpb.JobMessagesResponse{grpctest.StateMessage(R), grpctest.Message(basic, "hello"), grpctest.StateMessage(D)}},
			wantState:  D,
			wantStates: []string{"RUNNING", "DONE"},
			wantTexts:  []string{"hello"},
		},
		{
			name: "a state seen before does not come back",
			jobs: grpctest.Job{
				StatesEnd:   status.Error(codes.Unimplemented, "no state stream"),
				Messages:    []*jobpb.JobMessagesResponse{grpctest.StateMessage(S), grpctest.StateMessage(R), grpctest.StateMessage(S), grpctest.StateMessage(D)},
				MessagesEnd: io.EOF,
			},
			wantState:  D,
			wantStates: []string{"STARTING", "RUNNING", "DONE"},
		},
		{
			name:       "runner without a message stream",
			jobs:       grpctest.Job{States: []jobpb.JobState_Enum{R, D}, MessagesEnd: status.Error(codes.Unimplemented, "no messages here")},
			wantState:  D,
			wantStates: []string{"RUNNING", "DONE"},
		},
		{
			name: "failure cause arrives after the FAILED state",
			jobs: grpctest.Job{States: []jobpb.JobState_Enum{R, F}, Messages: []*jobpb.JobMessagesResponse{
				grpctest.Message(basic, "starting"), grpctest.StateMessage(R), grpctest.StateMessage(F), grpctest.Message(errm, "worker said: boom"), grpctest.Message(basic, "cleaning up"),
			}},
			wantState: F,
			wantErr:   "job job-1 failed: worker said: boom",
			wantTexts: []string{"starting", "worker said: boom", "cleaning up"},
		},
		{
			name: "a failure's message and error carry its cause",
			jobs: grpctest.Job{States: []jobpb.JobState_Enum{R, F}, Messages: []*jobpb.JobMessagesResponse{
				grpctest.Message(basic, "one line\n"), grpctest.StateMessage(R), grpctest.StateMessage(F), grpctest.Message(errm, string(unregistered)),
			}},
			wantState:  F,
			wantErr:    "job job-1 failed: in transform main.shout: main.shout not found. Register DoFns and functions with the beam/register package: register it in an init function",
			wantCauses: []string{"main.shout"},
		},
		{
			name:      "failure without an error message uses the last message",
			jobs:      grpctest.Job{States: []jobpb.JobState_Enum{R, F}, Messages: []*jobpb.JobMessagesResponse{grpctest.Message(basic, "worker lost")}},
			wantState: F,
			wantErr:   "job job-1 failed: worker lost",
		},
		{
			// Flink's and Spark's job servers replay a job's history, which
			// begins with STOPPED (not started yet), and end the message
			// stream at the terminal state.
			name: "history that starts with STOPPED, as Java job servers send it",
			jobs: grpctest.Job{
				States:   []jobpb.JobState_Enum{jobpb.JobState_STOPPED, S, R, D},
				Messages: []*jobpb.JobMessagesResponse{grpctest.StateMessage(jobpb.JobState_STOPPED), grpctest.StateMessage(S), grpctest.StateMessage(R), grpctest.StateMessage(D)},
			},
			wantState:  D,
			wantStates: []string{"STARTING", "RUNNING", "DONE"},
		},
		{
			name:      "state stream breaks",
			jobs:      grpctest.Job{States: []jobpb.JobState_Enum{R}, StatesEnd: status.Error(codes.Unavailable, "connection lost")},
			wantState: R,
			wantErr:   "lost track of job job-1 on passthrough:///fake-jobs: the job server stopped answering (connection lost); the job may still be running there",
		},
		{
			name:      "streams end before the job does",
			jobs:      grpctest.Job{States: []jobpb.JobState_Enum{R}, StatesEnd: io.EOF, Messages: []*jobpb.JobMessagesResponse{grpctest.StateMessage(R)}, MessagesEnd: io.EOF},
			wantState: R,
			wantErr:   "job job-1 on passthrough:///fake-jobs: the job server closed its streams before the job finished (last state RUNNING)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, conn := grpctest.ServeJobs(t, tt.jobs)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var states, texts, causes []string
			state, err := submit.Follow(ctx, conn, grpctest.JobID, func(e submit.Event) {
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
	_, conn := grpctest.ServeJobs(t, grpctest.Job{States: []jobpb.JobState_Enum{jobpb.JobState_RUNNING}})
	ctx, cancel := context.WithCancel(context.Background())
	state, err := submit.Follow(ctx, conn, grpctest.JobID, func(e submit.Event) {
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
	_, conn := grpctest.ServeJobs(t, grpctest.Job{Messages: []*jobpb.JobMessagesResponse{
		grpctest.StateMessage(jobpb.JobState_STOPPED), grpctest.StateMessage(jobpb.JobState_STARTING), grpctest.StateMessage(jobpb.JobState_RUNNING),
		grpctest.Message(jobpb.JobMessage_JOB_MESSAGE_BASIC, "hello"), grpctest.StateMessage(jobpb.JobState_DONE),
	}, MessagesEnd: io.EOF})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []string
	err := submit.Logs(ctx, conn, grpctest.JobID, false, func(e submit.Event) { got = append(got, e.State+e.Text) })
	if want := []string{"STARTING", "RUNNING", "hello", "DONE"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Logs = %v, events %q; want nil, %q", err, got, want)
	}
}

// TestUnimplementedJobAPI: a job server that lacks a method (older Beam
// releases lack some) gets a sentence, not gRPC's status text.
func TestUnimplementedJobAPI(t *testing.T) {
	conn := grpctest.Serve(t, "fake-jobs", func(srv *grpc.Server) { jobpb.RegisterJobServiceServer(srv, jobpb.UnimplementedJobServiceServer{}) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := submit.ListJobs(ctx, conn); err == nil || err.Error() != "job server passthrough:///fake-jobs cannot list its jobs: it does not implement the Job API's GetJobs" {
		t.Errorf("ListJobs = %v", err)
	}
	if _, err := submit.Metrics(ctx, conn, grpctest.JobID); err == nil || err.Error() != "job server passthrough:///fake-jobs cannot report job metrics: it does not implement the Job API's GetJobMetrics" {
		t.Errorf("Metrics = %v", err)
	}
}

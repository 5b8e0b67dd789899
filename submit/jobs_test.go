package submit_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/beam"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/stage/stagetest"
	"github.com/beamctl/beamctl/submit"
	"google.golang.org/protobuf/proto"
)

// collect gathers events.
type collect struct {
	states, texts []string
	// times are the messages'.
	times []time.Time
}

func (c *collect) add(e submit.Event) {
	if e.Kind == submit.EventState {
		c.states = append(c.states, e.State)
	} else {
		c.texts = append(c.texts, e.Text)
		c.times = append(c.times, e.Time)
	}
}

func TestJobInspection(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job, c, pool := submitScratch(ctx, t, false, submit.SubmitOptions{JobName: "inspect-me"})

	var followed collect
	if err := submit.Logs(ctx, prism.Conn, job.ID, true, followed.add); err != nil {
		t.Fatalf("Logs following: %v", err)
	}
	if len(followed.states) == 0 || followed.states[len(followed.states)-1] != "DONE" || len(followed.texts) == 0 {
		t.Fatalf("Logs following saw states %v and %d messages; want messages and DONE last", followed.states, len(followed.texts))
	}

	// The job is over, so prism replays its messages and ends the stream.
	var snap collect
	start := time.Now()
	if err := submit.Logs(ctx, prism.Conn, job.ID, false, snap.add); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Logs of a finished job took %v; want the stream's end, not a quiet period", took)
	}
	if !reflect.DeepEqual(snap.texts, followed.texts) || !reflect.DeepEqual(snap.states, []string{"DONE"}) {
		t.Errorf("Logs = states %v, messages %q; want DONE and the messages seen while following, %q", snap.states, snap.texts, followed.texts)
	}
	// Messages of the past carry the server's time or none, never the
	// time they were read.
	for i, at := range snap.times {
		if at.After(start) {
			t.Errorf("message %q of the past stamped %v, after the snapshot began at %v", snap.texts[i], at, start)
		}
	}
	for i, at := range followed.times {
		if at.IsZero() {
			t.Errorf("message %q followed as it happened has no time", followed.texts[i])
		}
	}

	st, err := submit.JobStatus(ctx, prism.Conn, job.ID)
	if err != nil {
		t.Fatalf("JobStatus: %v", err)
	}
	if st.ID != job.ID || st.Name != "inspect-me" || st.State != jobpb.JobState_DONE || st.StateTime.IsZero() || len(st.Options) == 0 {
		t.Errorf("JobStatus = %+v; want %s named inspect-me, DONE, with a state time and options", st, job.ID)
	}

	jobs, err := submit.ListJobs(ctx, prism.Conn)
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	var listed *submit.JobInfo
	for i, j := range jobs {
		if i > 0 && len(jobs[i-1].ID) == len(j.ID) && jobs[i-1].ID >= j.ID {
			t.Errorf("jobs out of order: %s before %s", jobs[i-1].ID, j.ID)
		}
		if j.ID == job.ID {
			listed = &jobs[i]
		}
	}
	if listed == nil || listed.Name != "inspect-me" || listed.State != jobpb.JobState_DONE || !reflect.DeepEqual(listed.Options, st.Options) {
		t.Errorf("ListJobs has %+v for the job; want it named inspect-me, DONE, with the options JobStatus gave", listed)
	}

	p, err := submit.PipelineOf(ctx, prism.Conn, job.ID)
	if err != nil {
		t.Fatalf("PipelineOf: %v", err)
	}
	env := p.GetComponents().GetEnvironments()["go"]
	var ext pipepb.ExternalPayload
	if env.GetUrn() != beam.ExternalEnvURN || proto.Unmarshal(env.GetPayload(), &ext) != nil || ext.GetEndpoint().GetUrl() != pool.addr {
		t.Errorf("job server holds environment %v; want external with pool %s", env, pool.addr)
	}
	files, err := stage.PipelineFiles(p)
	if err != nil || files[c.Worker.Path] != c.Worker {
		t.Errorf("job server's pipeline declares %v, %v; want the worker %+v", files, err, c.Worker)
	}
}

func TestUnknownJobInspection(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := "job job-nope not found on " + prism.Endpoint + ": list the jobs there for the id"
	checks := map[string]func() error{
		"JobStatus":  func() error { _, err := submit.JobStatus(ctx, prism.Conn, "job-nope"); return err },
		"PipelineOf": func() error { _, err := submit.PipelineOf(ctx, prism.Conn, "job-nope"); return err },
		"Logs":       func() error { return submit.Logs(ctx, prism.Conn, "job-nope", false, nil) },
		"Logs -f":    func() error { return submit.Logs(ctx, prism.Conn, "job-nope", true, nil) },
	}
	for name, call := range checks {
		if err := call(); !errors.Is(err, submit.ErrJobNotFound) || err.Error() != want {
			t.Errorf("%s = %v; want %q", name, err, want)
		}
	}
}

// TestLogsOfRunningJob reads the log of a job that is waiting for workers:
// the stream stays open, so a snapshot ends when it falls quiet, while
// following ends with the job.
func TestLogsOfRunningJob(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job, _, pool := submitScratch(ctx, t, true, submit.SubmitOptions{})
	select {
	case <-pool.started:
	case <-ctx.Done():
		t.Fatal("prism asked for no worker")
	}

	var snap collect
	start := time.Now()
	if err := submit.Logs(ctx, prism.Conn, job.ID, false, snap.add); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if took := time.Since(start); took < time.Second || took > 12*time.Second {
		t.Errorf("Logs of a running job took %v; want a quiet second, within ten seconds", took)
	}
	if len(snap.states) != 1 || snap.states[0] != "RUNNING" {
		t.Errorf("Logs saw states %v; want RUNNING", snap.states)
	}

	followed := make(chan error, 1)
	var tail collect
	go func() { followed <- submit.Logs(ctx, prism.Conn, job.ID, true, tail.add) }()
	if err := submit.Cancel(ctx, prism.Conn, job.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := <-followed; err != nil {
		t.Fatalf("Logs following: %v", err)
	}
	if len(tail.states) == 0 || tail.states[len(tail.states)-1] != "CANCELLED" {
		t.Errorf("Logs following saw states %v; want CANCELLED last", tail.states)
	}
}

// TestFollowJobServerDies kills the job server while a job runs: Follow
// must say it lost the job rather than wait for ever.
func TestFollowJobServerDies(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doomed, err := stagetest.StartPrism(ctx, prismBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { doomed.Close() })
	conn, err := submit.Dial(ctx, doomed.Endpoint, submit.DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()

	c, err := capture.Capture(ctx, capture.Options{Launcher: slowBin, WorkerPath: slowBin})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	pool := onWatchedPool(t, c, "slow: element")
	job, err := submit.Submit(ctx, conn, c, submit.SubmitOptions{})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	type result struct {
		state jobpb.JobState_Enum
		err   error
	}
	followed := make(chan result, 1)
	go func() {
		state, err := submit.Follow(ctx, conn, job.ID, nil)
		followed <- result{state, err}
	}()
	select {
	case <-pool.seen:
	case r := <-followed:
		t.Fatalf("Follow = %v, %v before the job got going\nprism:\n%s", r.state, r.err, doomed.Output())
	case <-ctx.Done():
		t.Fatalf("no element started\nprism:\n%s", doomed.Output())
	}

	doomed.Close()
	killed := time.Now()
	r := <-followed
	if took := time.Since(killed); took > 10*time.Second {
		t.Errorf("Follow returned %v after the job server died; want promptly", took)
	}
	if r.state != jobpb.JobState_RUNNING || !errors.Is(r.err, submit.ErrUnreachable) ||
		!strings.Contains(r.err.Error(), "lost track of job "+job.ID+" on "+doomed.Endpoint+": the job server stopped answering") {
		t.Errorf("Follow = %v, %v; want RUNNING and ErrUnreachable naming job %s", r.state, r.err, job.ID)
	}
	if _, err := submit.ListJobs(ctx, conn); !errors.Is(err, submit.ErrUnreachable) {
		t.Errorf("ListJobs on the dead job server = %v; want ErrUnreachable", err)
	}
}

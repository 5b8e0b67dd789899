package submit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/stage/stagetest"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/submit"
)

const kingLear = `Blow, winds, and crack your cheeks! rage! blow!

You cataracts and hurricanoes, spout
Till you have drench'd our steeples, drown'd the cocks!
`

// followJob follows a job with a deadline and returns its final state, error
// and events.
func followJob(t *testing.T, jobID string) (jobpb.JobState_Enum, error, []submit.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var events []submit.Event
	state, err := submit.Follow(ctx, prism.Conn, jobID, func(e submit.Event) { events = append(events, e) })
	if ctx.Err() != nil {
		t.Fatalf("job %s did not finish in time; events: %v\nprism:\n%s", jobID, events, prism.Output())
	}
	return state, err, events
}

// prismArtifactSHA256 reads an artifact back from prism's retrieval service,
// the way workers receive it.
func prismArtifactSHA256(t *testing.T, f beam.File) (string, int64) {
	t.Helper()
	sum, n, err := stagetest.Fetch(context.Background(), prism.Conn, beam.FileArtifact(f, beam.GoWorkerRoleURN))
	if err != nil {
		t.Fatalf("reading back %s from prism: %v", f.Path, err)
	}
	return sum, n
}

func TestSubmitWordcount(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	input, output := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	if err := os.WriteFile(input, []byte(kingLear), 0o644); err != nil {
		t.Fatal(err)
	}
	c := captureWordcount(t, wcBin, input, output)
	pool := onPool(t, c, false)

	var chunks int
	var maxChunk int64
	var last stage.Progress
	job, err := submit.Submit(context.Background(), prism.Conn, c, submit.SubmitOptions{
		Progress: func(p stage.Progress) {
			maxChunk = max(maxChunk, p.Sent-last.Sent)
			chunks++
			last = p
		},
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if job.ID == "" || job.Endpoint != prism.Endpoint || job.Name != c.JobName {
		t.Errorf("Submit = %+v; want a job id, endpoint %s and name %s", job, prism.Endpoint, c.JobName)
	}
	size := last.Size
	if last.Sent != size || size < 10<<20 || maxChunk > stage.DefaultChunkSize || chunks < int(size/stage.DefaultChunkSize) {
		t.Errorf("staged %d of %d bytes in %d chunks of at most %d; want the whole worker in chunks of at most %d", last.Sent, size, chunks, maxChunk, stage.DefaultChunkSize)
	}
	// Follow from the start: reading the artifact back may take as long as
	// the job, whose RUNNING state would then be over.
	type followed struct {
		state  jobpb.JobState_Enum
		err    error
		events []submit.Event
	}
	done := make(chan followed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var f followed
		f.state, f.err = submit.Follow(ctx, prism.Conn, job.ID, func(e submit.Event) { f.events = append(f.events, e) })
		done <- f
	}()
	if sum, n := prismArtifactSHA256(t, c.Worker); sum != c.Worker.SHA256 || n != size {
		t.Errorf("prism holds %d bytes with sha256 %s; want %d bytes with %s", n, sum, size, c.Worker.SHA256)
	}

	f := <-done
	state, err, events := f.state, f.err, f.events
	if state != jobpb.JobState_DONE || err != nil {
		t.Fatalf("Follow = %v, %v; want DONE\nevents: %v\npool errors: %v", state, err, events, pool.errs)
	}
	var states []string
	for _, e := range events {
		if e.Kind == submit.EventState {
			states = append(states, e.State)
		}
	}
	if !slices.Contains(states, "RUNNING") || states[len(states)-1] != "DONE" {
		t.Errorf("states = %v; want RUNNING ... DONE", states)
	}
	out, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"blow: 2", "drench'd: 1", "you: 2"} {
		if !slices.Contains(strings.Split(strings.TrimSpace(string(out)), "\n"), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	metrics, err := submit.Metrics(context.Background(), prism.Conn, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]submit.Metric{}
	for _, m := range metrics {
		if m.Namespace == "wordcount" {
			byName[m.Name] = m
		}
	}
	if m := byName["lines"]; m.Kind != submit.Counter || m.Counter != 4 || !strings.Contains(m.Transform, "extractFn") {
		t.Errorf("lines metric = %+v; want counter 4 of extractFn", m)
	}
	if m := byName["empty_lines"]; m.Kind != submit.Counter || m.Counter != 1 {
		t.Errorf("empty_lines metric = %+v; want counter 1", m)
	}
	wantDist := submit.DistributionValue{Count: 4, Sum: int64(len(kingLear) - 4), Min: 0, Max: int64(len("Till you have drench'd our steeples, drown'd the cocks!"))}
	if m := byName["line_length"]; m.Kind != submit.Distribution || m.Distribution != wantDist {
		t.Errorf("line_length metric = %+v; want distribution %+v", m, wantDist)
	}
}

func TestFollowFailedJob(t *testing.T) {
	needBinaries(t)
	c, err := capture.Capture(context.Background(), capture.Options{Launcher: panickyBin, WorkerPath: panickyBin})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	onPool(t, c, false)
	job, err := submit.Submit(context.Background(), prism.Conn, c, submit.SubmitOptions{})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	state, err, _ := followJob(t, job.ID)
	var jf *submit.JobFailedError
	if state != jobpb.JobState_FAILED || !errors.As(err, &jf) || jf.JobID != job.ID {
		t.Fatalf("Follow = %v, %v; want FAILED with a JobFailedError", state, err)
	}
	for _, want := range []string{"panicky: element 2 is not welcome", "explodeFn"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("failure does not mention %q:\n%v", want, err)
		}
	}
}

func TestSubmitWorkerChangedAfterCapture(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	worker := filepath.Join(dir, "worker")
	if err := os.Link(wcBin, worker); err != nil {
		t.Fatal(err)
	}
	c := captureWordcount(t, worker, filepath.Join(dir, "in"), filepath.Join(dir, "out"))
	// A rebuild replaces the file.
	os.Remove(worker)
	if err := os.WriteFile(worker, []byte("rebuilt"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := jobCount(t)
	_, err := submit.Submit(context.Background(), prism.Conn, c, submit.SubmitOptions{})
	var mm *stage.MismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), worker) {
		t.Fatalf("Submit = %v; want a MismatchError naming %s", err, worker)
	}
	if after := jobCount(t); after != before {
		t.Errorf("job server has %d jobs after a refused submission; want %d", after, before)
	}
}

func jobCount(t *testing.T) int {
	t.Helper()
	resp, err := jobpb.NewJobServiceClient(prism.Conn).GetJobs(context.Background(), &jobpb.GetJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetJobInfo())
}

func TestCancel(t *testing.T) {
	needBinaries(t)
	// Workers never come, so the job waits until cancelled.
	job, _, pool := submitScratch(context.Background(), t, true, submit.SubmitOptions{})
	pool.waitAsked(t)
	if err := submit.Cancel(context.Background(), prism.Conn, job.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	state, err, events := followJob(t, job.ID)
	if state != jobpb.JobState_CANCELLED || err != nil {
		t.Fatalf("Follow after Cancel = %v, %v; want CANCELLED\nevents: %v", state, err, events)
	}
	err = submit.Cancel(context.Background(), prism.Conn, job.ID)
	if !errors.Is(err, submit.ErrJobFinished) || !strings.Contains(err.Error(), "already ended CANCELLED") {
		t.Errorf("second Cancel = %v; want ErrJobFinished saying it is already CANCELLED", err)
	}
}

func TestUnknownJob(t *testing.T) {
	needBinaries(t)
	want := "job job-nope not found on " + prism.Endpoint + ": list the jobs there for the id"
	defer func() {
		if t.Failed() {
			t.Logf("prism:\n%s", prism.Output())
		}
	}()
	err := submit.Cancel(context.Background(), prism.Conn, "job-nope")
	if err == nil || err.Error() != want || !errors.Is(err, submit.ErrJobNotFound) {
		t.Errorf("Cancel = %v; want %q", err, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := submit.Follow(ctx, prism.Conn, "job-nope", nil); !errors.Is(err, submit.ErrJobNotFound) || err.Error() != want {
		t.Errorf("Follow = %v; want %q", err, want)
	}
	if _, err := submit.Metrics(ctx, prism.Conn, "job-nope"); !errors.Is(err, submit.ErrJobNotFound) {
		t.Errorf("Metrics = %v; want ErrJobNotFound", err)
	}
}

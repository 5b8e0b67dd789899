package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/gcptest"
)

var (
	gcsOnce sync.Once
	gcsBin  string
	gcsErr  error
)

// startCloud starts the Google Cloud stand-ins for one test, with every
// other address the SDK could reach sent to a listener that counts
// connections; connections() must stay 0.
func startCloud(t *testing.T) (c *gcptest.Cloud, connections func() int64) {
	t.Helper()
	gcsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		gcsBin, gcsErr = gcptest.BuildStorage(ctx, filepath.Join(cacheDir, "bin"))
	})
	if gcsErr != nil {
		t.Fatal(gcsErr)
	}
	connections = offline(t)
	return gcptest.Start(t, gcsBin), connections
}

// TestDataflowSubmit submits wordcount through the SDK's Dataflow runner to
// stand-ins of Google Cloud on loopback (the Cloud Storage emulator, a
// metadata server with an access token, Dataflow's jobs API), and checks
// what a user sees: the job id Dataflow assigned, the worker the SDK
// uploaded being beamctl's, --wait following the job to success or
// failure, a template written instead of a job, Ctrl-C leaving the job
// running, and the access token nowhere in beamctl's output.
func TestDataflowSubmit(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads wordcount's worker")
	}
	dist := builtDist(t)
	m, err := build.ReadManifest(dist)
	if err != nil {
		t.Fatal(err)
	}
	var workerSHA string
	for _, w := range m.Workers() {
		if w.Platform.String() == "linux/amd64" {
			workerSHA = w.SHA256
		}
	}
	if workerSHA == "" {
		t.Fatalf("%s has no linux/amd64 worker", dist)
	}
	cloud, connections := startCloud(t)
	const bucket = "beam-staging"
	if err := cloud.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	lastJob := func(t *testing.T) string {
		t.Helper()
		jobs := cloud.Jobs()
		if len(jobs) == 0 {
			t.Fatal("no job was created")
		}
		return jobs[len(jobs)-1].ID
	}
	submit := func(extra ...string) []string {
		args := append([]string{"submit", dist, "--runner", "dataflow", "--project", "beam-p1", "--region", "europe-west4",
			"--staging-location", "gs://" + bucket + "/staging", "--target", "linux/amd64", "-v"}, extra...)
		return append(args, "--", "--dataflow_endpoint="+cloud.DataflowEndpoint, "--input=gs://b/in", "--output=gs://b/out")
	}
	noToken := func(t *testing.T, r result) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, cloud.Token) {
			t.Errorf("the access token is in beamctl's output")
		}
	}

	t.Run("submitted", func(t *testing.T) {
		r := beamctl(t, submit("--output", "json")...)
		noToken(t, r)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		jobs := cloud.Jobs()
		if len(jobs) != 1 || jobs[0].Project != "beam-p1" || jobs[0].Region != "europe-west4" {
			t.Fatalf("jobs created %+v, want one in beam-p1/europe-west4", jobs)
		}
		var j dataflowJSON
		if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
			t.Fatalf("output %q: %v", r.stdout, err)
		}
		if j.JobID != jobs[0].ID || j.State != "RUNNING" || j.DryRun || j.WorkerSHA256 != workerSHA || j.Platform != "linux/amd64" {
			t.Errorf("beamctl printed job %q, dry run %v, worker sha256 %s on %s; want job %s, the manifest's %s on linux/amd64",
				j.JobID, j.DryRun, j.WorkerSHA256, j.Platform, jobs[0].ID, workerSHA)
		}
		// The worker the SDK staged for Dataflow's workers is beamctl's.
		if !stagedObject(t, cloud, bucket, workerSHA) {
			t.Errorf("no object in gs://%s has the worker's sha256 %s", bucket, workerSHA)
		}
		if cloud.Unauthorized() != 0 {
			t.Errorf("%d Dataflow requests without the access token", cloud.Unauthorized())
		}
	})

	for _, tt := range []struct {
		state string
		code  int
	}{
		{gcptest.Done, 0},
		{gcptest.Failed, exitFailure},
		{gcptest.Cancelled, exitCancelled},
	} {
		t.Run("wait for "+tt.state, func(t *testing.T) {
			cloud.SetState(tt.state)
			r := beamctl(t, submit("--wait", "--output", "json")...)
			noToken(t, r)
			id := lastJob(t)
			var j dataflowJSON
			if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
				t.Fatalf("output %q: %v\n%s", r.stdout, err, r.stderr)
			}
			if r.code != tt.code || j.JobID != id || "JOB_STATE_"+j.State != tt.state {
				t.Fatalf("exit %d, job %s %s; want exit %d and job %s %s\n%s", r.code, j.JobID, j.State, tt.code, id, tt.state, r.stderr)
			}
			if tt.code == exitFailure {
				last := lastLine(r.stderr)
				if !strings.Contains(last, "Dataflow job "+id+" failed") || !strings.Contains(j.Error, "failed") {
					t.Errorf("last line %q, error %q; want them to name job %s failed", last, j.Error, id)
				}
			}
		})
	}

	t.Run("no staging bucket", func(t *testing.T) {
		r := beamctl(t, "submit", dist, "--runner", "dataflow", "--project", "beam-p1", "--region", "europe-west4",
			"--staging-location", "gs://no-such-bucket/staging", "--target", "linux/amd64",
			"--", "--dataflow_endpoint="+cloud.DataflowEndpoint, "--input=gs://b/in", "--output=gs://b/out")
		if r.code != exitFailure || !strings.Contains(r.stderr, "create the staging location's bucket first") ||
			strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line saying to create the bucket", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("template", func(t *testing.T) {
		before := len(cloud.Jobs())
		r := beamctl(t, submit("--template-location", "gs://"+bucket+"/templates/wordcount", "--output", "json")...)
		noToken(t, r)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if n := len(cloud.Jobs()); n != before {
			t.Errorf("a template started %d jobs", n-before)
		}
		b, err := cloud.Object(bucket, "templates/wordcount")
		if err != nil {
			t.Fatal(err)
		}
		var tmpl struct {
			Type        string
			Environment struct{ SDKPipelineOptions json.RawMessage }
		}
		if err := json.Unmarshal(b, &tmpl); err != nil || tmpl.Type != "JOB_TYPE_BATCH" {
			t.Errorf("the template is not a batch job (%v): %.200s", err, b)
		}
	})

	t.Run("interrupted while waiting", func(t *testing.T) {
		cloud.SetState(gcptest.Running)
		cmd := exec.Command(beamctlBinary(t), submit("--wait")...)
		pipe := startStderr(t, cmd)
		// The SDK polls the job once, then every 30 s: the first poll
		// means beamctl is following a submitted job.
		lines := make(chan string)
		var seen strings.Builder
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		polled := cloud.Polled()
		deadline := time.After(2 * time.Minute)
		for polled != nil {
			select {
			case <-polled:
				polled = nil
			case l, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("beamctl exited before the job was polled\n%s", seen.String())
				}
				seen.WriteString(l + "\n")
			case <-deadline:
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the job was not polled within 2 minutes\n%s", seen.String())
			}
		}
		cmd.Process.Signal(syscall.SIGINT)
		for l := range lines {
			seen.WriteString(l + "\n")
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("exit %v, want 130\n%s", err, seen.String())
		}
		id := lastJob(t)
		if !strings.Contains(seen.String(), "stopped following Dataflow job "+id+", which runs on") {
			t.Errorf("beamctl did not say that job %s runs on:\n%s", id, seen.String())
		}
		if strings.Contains(seen.String(), cloud.Token) {
			t.Errorf("the access token is in beamctl's output")
		}
		if ch := cloud.StateChanges(); len(ch) != 0 {
			t.Errorf("Ctrl-C changed the job's state: %q", ch)
		}
	})

	if n := connections(); n != 0 {
		t.Errorf("%d connections to addresses other than the stand-ins", n)
	}
}

// stagedObject tells whether an object in bucket has the given sha256.
func stagedObject(t *testing.T, c *gcptest.Cloud, bucket, sum string) bool {
	t.Helper()
	names, err := c.Objects(bucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := c.Object(bucket, n)
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) == sum {
			return true
		}
	}
	return false
}

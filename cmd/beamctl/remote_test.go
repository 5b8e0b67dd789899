package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/grpctest"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/submit"
)

// onceDist is a build output of examples/wordcount made once per test
// binary, shared by the tests that use it as it is.
type onceDist struct {
	once sync.Once
	dir  string
}

// get builds it, for this machine, into name with args.
func (d *onceDist) get(t *testing.T, name string, args ...string) string {
	t.Helper()
	d.once.Do(func() {
		dir := filepath.Join(cacheDir, name)
		r := beamctl(t, append([]string{"build", "../../examples/wordcount", "--target", "host", "--out", dir}, args...)...)
		if r.code != 0 {
			t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
		}
		d.dir = dir
	})
	if d.dir == "" {
		t.Fatal("building wordcount failed before")
	}
	return d.dir
}

var plainDist, bootDistOut onceDist

// builtDist is examples/wordcount built for the host, for the tests that
// submit a build output.
func builtDist(t *testing.T) string { return plainDist.get(t, "dist-wordcount") }

// copyDist copies a build output so a test may damage it.
func copyDist(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestSubmitDistWithoutGo submits a build output to the upstream prism job
// server with workers in beamctl's pool, from a PATH that has no Go.
func TestSubmitDistWithoutGo(t *testing.T) {
	t.Parallel()
	prism := startPrism(t)
	dist := builtDist(t)
	out := filepath.Join(t.TempDir(), "counts.txt")
	cmd := exec.Command(beamctlBinary(t), "submit", dist, "--endpoint", prism.Endpoint, "--environment", "loopback",
		"--", "--input="+abs(t, wordcountInput), "--output="+out)
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	stderr, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got, want := readSorted(t, out), countWords(t, wordcountInput); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("counts differ:\n got %v\nwant %v", got, want)
	}
}

// TestDetachAndJobs submits with the default docker environment and
// detaches, then inspects the job with the jobs commands. There is no
// Docker engine here, so the environment is checked on the pipeline the
// job server received.
func TestDetachAndJobs(t *testing.T) {
	t.Parallel()
	prism := startPrism(t)
	dist := builtDist(t)
	r := beamctl(t, "submit", dist, "--endpoint", prism.Endpoint, "--detach", "--output", "json", "--job-name", "detached",
		"--", "--input="+abs(t, wordcountInput), "--output="+filepath.Join(t.TempDir(), "x"))
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var detached struct {
		JobID           string `json:"job_id"`
		Endpoint, State string
	}
	if err := json.Unmarshal([]byte(r.stdout), &detached); err != nil || detached.JobID == "" || detached.Endpoint != prism.Endpoint {
		t.Fatalf("--detach printed %q: %v", r.stdout, err)
	}
	id := detached.JobID

	p, err := submit.PipelineOf(context.Background(), prism.Conn, id)
	if err != nil {
		t.Fatal(err)
	}
	env := p.GetComponents().GetEnvironments()["go"]
	var dp pipepb.DockerPayload
	if err := proto.Unmarshal(env.GetPayload(), &dp); err != nil || env.GetUrn() != beam.DockerEnvURN || dp.GetContainerImage() != "apache/beam_go_sdk:2.77.0" {
		t.Errorf("environment %s %v (%v); want docker apache/beam_go_sdk:2.77.0", env.GetUrn(), &dp, err)
	}

	r = beamctl(t, "jobs", "list", "--endpoint", prism.Endpoint)
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "detached") {
		t.Errorf("jobs list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = beamctl(t, "jobs", "status", id, "--endpoint", prism.Endpoint, "--output", "json")
	var st struct {
		ID    string `json:"job_id"`
		State string
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.ID != id || st.State == "" {
		t.Errorf("jobs status: exit %d %+v\n%s%s", r.code, st, r.stdout, r.stderr)
	}
	r = beamctl(t, "jobs", "logs", id, "--endpoint", prism.Endpoint)
	if r.code != 0 || !strings.Contains(r.stdout, "state") {
		t.Errorf("jobs logs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = beamctl(t, "jobs", "cancel", id, "--endpoint", prism.Endpoint)
	if r.code != 0 && !strings.Contains(r.stderr, "already") {
		t.Errorf("jobs cancel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Followed to its end, the job's end is the exit code, as for run.
	r = beamctl(t, "jobs", "logs", id, "--follow", "--endpoint", prism.Endpoint)
	final := beamctl(t, "jobs", "status", id, "--endpoint", prism.Endpoint, "--output", "json")
	if json.Unmarshal([]byte(final.stdout), &st) != nil {
		t.Fatalf("jobs status: %q", final.stdout)
	}
	if want, ok := map[string]int{"DONE": 0, "FAILED": exitFailure, "CANCELLED": exitCancelled}[st.State]; !ok || r.code != want {
		t.Errorf("jobs logs --follow of a job that ended %s: exit %d, want %d\n%s", st.State, r.code, want, r.stderr)
	}
	for _, sub := range [][]string{{"status", "job-nope"}, {"cancel", "job-nope"}, {"logs", "job-nope"}, {"metrics", "job-nope"}} {
		r = beamctl(t, append(append([]string{"jobs"}, sub...), "--endpoint", prism.Endpoint)...)
		if want := "job job-nope not found on " + prism.Endpoint + ": list the jobs there for the id"; r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("jobs %s of an unknown job: exit %d, want 1 and %q\n%s", sub[0], r.code, want, r.stderr)
		}
	}
}

func TestRemoteFaults(t *testing.T) {
	t.Parallel()
	dist := builtDist(t)
	prism := startPrism(t)
	closed := grpctest.FreeAddr(t)
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	webAddr := strings.TrimPrefix(web.URL, "http://")

	noWorker := copyDist(t, dist)
	os.Remove(filepath.Join(noWorker, "wordcount-worker-"+build.HostPlatform().Suffix()))
	corrupt := copyDist(t, dist)
	os.WriteFile(filepath.Join(corrupt, "manifest.json"), []byte(`{"schemaVersion": 1, "binaries": [`), 0o644)
	tampered := copyDist(t, dist)
	launcher := filepath.Join(tampered, "wordcount-launcher-"+build.HostPlatform().Suffix())
	f, _ := os.OpenFile(launcher, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("x"))
	f.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"endpoint unreachable", []string{"submit", dist, "--endpoint", closed, "--connect-timeout", "2s"}, 1, "cannot reach job server at " + closed},
		{"not a job server", []string{"submit", dist, "--endpoint", webAddr}, 2, webAddr + " is not a Beam job server"},
		{"TLS to a plaintext server", []string{"submit", dist, "--endpoint", prism.Endpoint, "--tls"}, 2, "drop --tls"},
		{"malformed endpoint", []string{"submit", dist, "--endpoint", "host:port:x"}, 2, "host:port:x"},
		{"worker missing", []string{"submit", noWorker, "--endpoint", prism.Endpoint}, 2, "wordcount-worker-" + build.HostPlatform().Suffix() + " is missing"},
		{"manifest corrupt", []string{"submit", corrupt, "--endpoint", prism.Endpoint}, 2, filepath.Join(corrupt, "manifest.json") + " is corrupt"},
		{"checksum mismatch", []string{"submit", tampered, "--endpoint", prism.Endpoint}, 2, launcher + " does not match manifest.json"},
		{"no such dist", []string{"submit", filepath.Join(t.TempDir(), "none"), "--endpoint", prism.Endpoint}, 2, "manifest.json does not exist"},
		{"unknown target", []string{"submit", dist, "--target", "linux/s390x", "--endpoint", prism.Endpoint}, 2, "has no worker for linux/s390x"},
		{"misspelt target", []string{"submit", dist, "--target", "linux/amd46", "--endpoint", prism.Endpoint}, 2, "has no worker for linux/amd46: did you mean --target linux/amd64?"},
		{"detach without endpoint", []string{"submit", dist, "--detach"}, 2, "--detach needs --endpoint"},
		{"external without address", []string{"submit", dist, "--endpoint", prism.Endpoint, "--environment", "external"}, 2, "--environment-config HOST:PORT"},
		{"unknown environment", []string{"submit", dist, "--endpoint", prism.Endpoint, "--environment", "kubernetes"}, 2, `--environment "kubernetes" is not one of`},
		{"jobs without endpoint", []string{"jobs", "list"}, 2, "give --endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := beamctl(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines > 1 {
				t.Errorf("error spans %d lines:\n%s", lines+1, r.stderr)
			}
		})
	}
}

// TestJobServerDiesMidJob kills the job server while a slow job runs:
// beamctl must say it lost the job, naming it, and exit 1.
func TestJobServerDiesMidJob(t *testing.T) {
	t.Parallel()
	prism := startPrism(t)
	cmd := exec.Command(beamctlBinary(t), "run", "./testdata/slow", "--target", "host", "--out", t.TempDir(),
		"--endpoint", prism.Endpoint, "--environment", "loopback")
	var stderr bytes.Buffer
	pipe := startStderr(t, cmd)
	buf := make([]byte, 4096)
	for !strings.Contains(stderr.String(), "slow: element") {
		n, err := pipe.Read(buf)
		stderr.Write(buf[:n])
		if err != nil {
			t.Fatalf("beamctl ended before the job ran:\n%s", stderr.String())
		}
	}
	prism.Close()
	rest, _ := readAll(pipe)
	stderr.Write(rest)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "lost track of job") {
		t.Errorf("exit %v, want 1 and a lost job\n%s", err, stderr.String())
	}
}

// TestJobsLogsFailureCause reads the messages of a job that failed on an
// upstream prism: the failure in a few lines with its fix, the runner's
// whole message under --verbose.
func TestJobsLogsFailureCause(t *testing.T) {
	t.Parallel()
	prism := startPrism(t)
	dist := t.TempDir()
	if r := beamctl(t, "build", "--vet=off", unregisteredPkg, "--target", "host", "--out", dist); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	r := beamctl(t, "submit", dist, "--endpoint", prism.Endpoint, "--environment", "loopback", "--output", "json",
		"--", "--output="+filepath.Join(t.TempDir(), "out"))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res jobResult
	if r.code != 1 || json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil || res.Cause == nil {
		t.Fatalf("submit: exit %d, want 1 with a cause\n%s%s", r.code, r.stdout, r.stderr)
	}
	const summary = "in transform main.shout: main.shout not found. Register DoFns and functions with the beam/register package"
	for _, tc := range []struct {
		name              string
		args              []string
		code              int
		stdout, notStdout []string
		maxStdout         int
		stderr            []string
	}{
		{"logs", nil, 0, []string{summary, "fix: register it in an init function", "register.Function1x1(shout)", "--verbose shows"},
			[]string{"invalid bundle desc"}, 2500, nil},
		{"verbose", []string{"-v"}, 0, []string{"invalid bundle desc: stage-", "state_api_service_descriptor"},
			[]string{"--verbose shows"}, 0, nil},
		{"follow", []string{"--follow"}, 1, []string{summary}, []string{"invalid bundle desc"}, 2500,
			[]string{"job " + res.JobID + " failed: " + summary, "register.Function1x1(shout)"}},
		{"json", []string{"--output", "json"}, 0,
			[]string{`"cause":{"kind":"unregistered","transform":"main.shout","function":"main.shout"`, "invalid bundle desc"}, nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := beamctl(t, append([]string{"jobs", "logs", res.JobID, "--endpoint", prism.Endpoint}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			checkText(t, "stdout", r.stdout, tc.stdout, tc.notStdout, tc.maxStdout)
			checkText(t, "stderr", r.stderr, tc.stderr, nil, 0)
		})
	}
}

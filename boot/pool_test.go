package boot_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/testenv"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/wrap"
)

const poem = `The quick brown fox
jumps over the lazy dog.

The dog's quick nap ends; the fox's doesn't.
`

// wantCounts is what wordcount should write for poem, in any order.
func wantCounts() []string {
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(poem), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '\'')
	}) {
		counts[w]++
	}
	var lines []string
	for w, n := range counts {
		lines = append(lines, fmt.Sprintf("%s: %d", w, n))
	}
	slices.Sort(lines)
	return lines
}

// env is an embedded runner with a worker pool, as beamctl run sets them up.
type env struct {
	runner *embeddedrunner.Runner
	pool   *boot.Pool
	output *outputLog
	logs   *outputLog
}

func startEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := &env{output: newOutputLog(), logs: newOutputLog()}
	var err error
	if e.runner, err = embeddedrunner.Start(ctx, embeddedrunner.Options{Logger: debugLogger(e.logs)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.runner.Close() })
	if e.pool, err = boot.StartPool(ctx, boot.PoolOptions{Logger: debugLogger(e.logs), Output: e.output, WorkDir: filepath.Join(t.TempDir(), "workers"), LocalBinary: loopback.LocalFiles(digest.NewCache(), debugLogger(e.logs))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.pool.Close()
		if t.Failed() {
			t.Logf("worker output:\n%s\nlogs:\n%s", e.output, e.logs)
		}
	})
	return e
}

// launch runs the wordcount launcher against the embedded runner with its
// workers in the pool.
func (e *env) launch(t *testing.T, worker string, extra ...string) (input, output string) {
	t.Helper()
	dir := t.TempDir()
	input, output = filepath.Join(dir, "in.txt"), filepath.Join(dir, "counts.txt")
	if err := os.WriteFile(input, []byte(poem), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{
		"--runner=universal",
		"--endpoint=" + e.runner.Endpoint(),
		"--environment_type=EXTERNAL",
		"--environment_config=" + e.pool.Address(),
		"--worker_binary=" + worker,
		"--input=" + input,
		"--output=" + output,
	}, extra...)
	cmd := exec.CommandContext(ctx, wordcount(t, runtime.GOARCH), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("launcher: %v\n%s", err, b)
	}
	return input, output
}

func (e *env) jobs(t *testing.T) []*jobpb.JobInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.runner.Client().GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		t.Fatalf("GetJobs: %v", err)
	}
	return resp.GetJobInfo()
}

func TestWordcount(t *testing.T) {
	tests := []struct {
		name    string
		goarch  string
		wantLog string // proves how the worker ran
	}{
		{name: "native", goarch: runtime.GOARCH, wantLog: "using local worker binary"},
		{name: "arm64 under qemu", goarch: "arm64", wantLog: "qemu-aarch64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS != "linux" {
				t.Skip("workers run on linux only")
			}
			if tt.goarch != runtime.GOARCH {
				if runtime.GOARCH != "amd64" {
					t.Skip("the emulated case runs on amd64 hosts")
				}
				if _, err := wrap.Emulator("linux", tt.goarch); err != nil {
					testenv.Skip(t, testenv.Qemu, "%v", err)
				}
			}
			worker := wordcount(t, tt.goarch)
			e := startEnv(t)

			_, output := e.launch(t, worker)

			b, err := os.ReadFile(output)
			if err != nil {
				t.Fatalf("pipeline output: %v", err)
			}
			got := strings.Split(strings.TrimSpace(string(b)), "\n")
			slices.Sort(got)
			if want := wantCounts(); !slices.Equal(got, want) {
				t.Errorf("counts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			jobs := e.jobs(t)
			if len(jobs) != 1 || jobs[0].GetState() != jobpb.JobState_DONE {
				t.Errorf("jobs = %v, want one DONE", jobs)
			}
			if !strings.Contains(e.logs.String(), tt.wantLog) {
				t.Errorf("no %q in the pool's log", tt.wantLog)
			}

			if err := e.pool.Close(); err != nil {
				t.Errorf("pool Close: %v", err)
			}
			noFailure(t, e.pool)
			assertNoWorkers(t, worker)
		})
	}
}

func TestWorkerExitsEarly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	dir := t.TempDir()
	worker := filepath.Join(dir, "worker")
	script := "#!/bin/sh\necho \"boom: no DoFns here\"\necho 'bad things' >&2\nexit 3\n"
	if err := os.WriteFile(worker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t)

	// --async: the job cannot finish without a worker.
	e.launch(t, worker, "--async=true")

	failure := nextFailure(t, e.pool, time.Minute)
	var exit *exec.ExitError
	if !errors.As(failure, &exit) || exit.ExitCode() != 3 {
		t.Errorf("failure %v does not carry exit status 3", failure)
	}
	if !slices.Contains(failure.Output, "boom: no DoFns here") || !slices.Contains(failure.Output, "bad things") {
		t.Errorf("failure output %q lacks the worker's lines", failure.Output)
	}
	if msg := failure.Error(); !strings.Contains(msg, "worker-1") || !strings.Contains(msg, "bad things") || strings.Contains(msg, "\n") {
		t.Errorf("failure message %q: want one line naming worker-1 and its last output", msg)
	}
	e.output.waitFor(t, "[worker-1] boom: no DoFns here\n", time.Second)

	// The runner survived the failure and can cancel the stuck job.
	jobs := e.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("jobs = %v, want one", jobs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.runner.Client().Cancel(ctx, &jobpb.CancelJobRequest{JobId: jobs[0].GetJobId()}); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := e.pool.Close(); err != nil {
		t.Errorf("pool Close: %v", err)
	}
	assertNoWorkers(t, dir)
}

// TestPoolFlood sends 300 StartWorker requests at once, for workers whose
// provision service never answers: the pool takes at most its maximum,
// refuses the rest at once, stays responsive, holds a bounded number of
// file descriptors, and leaves no directory once the boots time out.
func TestPoolFlood(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts file descriptors in /proc")
	}
	runner := serveFake(t, &fakeRunner{block: true})
	workDir := t.TempDir()
	const max = 8
	p, err := boot.StartPool(context.Background(), boot.PoolOptions{WorkDir: workDir, AnswerErrors: true, MaxWorkers: max, BootTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fdsBefore := openFDs(t)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	ep := &pipepb.ApiServiceDescriptor{Url: runner}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for i := range 300 {
		wg.Go(func() {
			resp, err := p.StartWorker(context.Background(), &fnpb.StartWorkerRequest{
				WorkerId: fmt.Sprintf("flood-%d", i), ProvisionEndpoint: ep, ArtifactEndpoint: ep, ControlEndpoint: ep, LoggingEndpoint: ep,
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("StartWorker: %v", err)
			case resp.GetError() == "":
				accepted++
			case strings.Contains(resp.GetError(), "maximum of 8 workers"):
				refused++
			default:
				t.Errorf("StartWorker answered %q", resp.GetError())
			}
		})
	}
	wg.Wait()
	if accepted != max || refused != 300-max {
		t.Errorf("%d accepted, %d refused; want %d and %d", accepted, refused, max, 300-max)
	}
	if n := openFDs(t) - fdsBefore; n > 8*max {
		t.Errorf("%d more file descriptors open during the flood; want at most %d", n, 8*max)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %.1f MiB during the flood", float64(heap)/(1<<20))
	if heap > 32<<20 {
		t.Errorf("heap in use grew by %d MiB during the flood; want at most 32 MiB", heap>>20)
	}

	// The boots time out, each reported, and their directories go.
	for range max {
		if f := nextFailure(t, p, time.Minute); !strings.Contains(strings.ToLower(f.Error()), "deadline") {
			t.Errorf("failure %v, want a provision timeout", f)
		}
	}
	if entries, err := os.ReadDir(workDir); err != nil || len(entries) != 0 {
		t.Errorf("worker directories left: %v %v", entries, err)
	}
	// Still responsive: a worker is taken again.
	if resp, err := p.StartWorker(context.Background(), &fnpb.StartWorkerRequest{WorkerId: "after", ProvisionEndpoint: ep}); err != nil || resp.GetError() != "" {
		t.Errorf("StartWorker after the flood: %v, %q", err, resp.GetError())
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

package launch_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/loopback"
)

func sessionSpec(t *testing.T) launch.Spec {
	return launch.Spec{
		Build: &build.Options{Package: "./wordcount", Targets: []build.Platform{build.HostPlatform()}, OutDir: t.TempDir()},
		Dir:   t.TempDir(),
	}
}

// TestSessionKeepsRunnerAndPool runs a session three times: the embedded
// runner and the pool start once, each run builds and captures again, and
// Close stops both.
func TestSessionKeepsRunnerAndPool(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("workers run on this machine on Linux only")
	}
	w := newWorld(t, grpctest.Job{States: []jobpb.JobState_Enum{jobpb.JobState_RUNNING, jobpb.JobState_DONE}})
	w.failures = make(chan error)
	d := w.deps()
	var runners, pools atomic.Int32
	startRunner, startPool := d.StartRunner, d.StartPool
	d.StartRunner = func(ctx context.Context, o embeddedrunner.Options) (launch.Runner, error) {
		runners.Add(1)
		return startRunner(ctx, o)
	}
	d.StartPool = func(ctx context.Context, o loopback.Options) (launch.WorkerPool, error) {
		pools.Add(1)
		return startPool(ctx, o)
	}
	ctx := t.Context()
	sess, err := launch.StartSession(ctx, sessionSpec(t), d, launch.Observer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res, err := sess.Run(ctx)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, w.logs.String())
		}
		if res.Outcome != launch.Done || !res.Embedded {
			t.Errorf("run %d: outcome %v, embedded %v; want Done on the embedded runner", i+1, res.Outcome, res.Embedded)
		}
	}
	sess.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	if runners.Load() != 1 || pools.Load() != 1 {
		t.Errorf("%d runners and %d pools started for three runs; want one of each", runners.Load(), pools.Load())
	}
	if len(w.builds) != 3 || len(w.captures) != 3 {
		t.Errorf("%d builds and %d captures for three runs; want three of each", len(w.builds), len(w.captures))
	}
	if !w.runnerClosed || !w.poolClosed {
		t.Errorf("Close left the runner (closed %v) or the pool (closed %v) running", w.runnerClosed, w.poolClosed)
	}
}

// TestSessionIgnoresEarlierJobsWorkers has the pool report a failed
// worker of an earlier job, then one of the job that runs: only the
// second fails the job.
func TestSessionIgnoresEarlierJobsWorkers(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("workers run on this machine on Linux only")
	}
	w := newWorld(t, grpctest.Job{States: []jobpb.JobState_Enum{jobpb.JobState_RUNNING}})
	failures := make(chan error, 2)
	earlier := &boot.WorkerError{Worker: "worker-1", ID: "job-0[wordcount]_go", Err: errors.New("exit status 2")}
	this := &boot.WorkerError{Worker: "worker-2", ID: grpctest.JobID + "[wordcount]_go", Err: errors.New("exit status 3")}
	failures <- earlier
	failures <- this
	w.failures = failures
	ctx := t.Context()
	sess, err := launch.StartSession(ctx, sessionSpec(t), w.deps(), launch.Observer{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != launch.Failed || !res.WorkerFailed || !errors.Is(res.Err, this) {
		t.Errorf("outcome %v, worker failed %v, error %v; want the job failed by its own worker (%v)", res.Outcome, res.WorkerFailed, res.Err, this)
	}
}

// TestStartSessionRefuses: a session rebuilds and reruns on the embedded
// runner, nothing else.
func TestStartSessionRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec func(*launch.Spec)
		want string
	}{
		{"a job server", func(s *launch.Spec) { s.Endpoint = endpoint }, "drop Endpoint"},
		{"a build output", func(s *launch.Spec) { s.Build, s.Dist = nil, "dist" }, "Dist is built already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, grpctest.Job{})
			s := sessionSpec(t)
			tc.spec(&s)
			sess, err := launch.StartSession(t.Context(), s, w.deps(), launch.Observer{})
			var inv interface{ Invalid() bool }
			if err == nil || !errors.As(err, &inv) || !inv.Invalid() || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("StartSession = %v, %v; want a usage error naming %s", sess, err, tc.want)
			}
			if sess != nil {
				sess.Close()
			}
			if w.runnerStarted {
				t.Error("the embedded runner started for a session refused")
			}
		})
	}
}

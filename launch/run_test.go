package launch_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/dataflow"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/internal/syncbuf"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/submit"
	"github.com/beamctl/beamctl/wrap"
)

// The fakes' fixed answers.
const (
	endpoint    = "localhost:8099"
	poolAddress = "127.0.0.1:50000"
	beamctlPath = "/opt/beamctl/bin/beamctl"
	jobName     = "wordcount"
)

var linuxAMD64 = build.Platform{OS: "linux", Arch: "amd64"}

// writeDist writes a DIST as a build leaves it: a launcher for this
// machine, a worker per target, and the manifest naming their digests.
func writeDist(t *testing.T, dir string, targets ...build.Platform) *build.Manifest {
	t.Helper()
	m := &build.Manifest{Schema: build.ManifestSchema, Name: jobName, Package: "./wordcount", Module: "example.com/wordcount",
		BeamVersion: "v2.77.0", GoVersion: runtime.Version()}
	add := func(role build.Role, p build.Platform, file string) {
		// Distinct contents, so that a worker mistaken for the launcher
		// shows in its digest.
		b := []byte(strings.Repeat(file+"\n", 4096))
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m.Binaries = append(m.Binaries, build.Binary{Role: role, Platform: p, File: file, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))})
	}
	add(build.RoleLauncher, build.HostPlatform(), "wordcount")
	for _, p := range targets {
		add(build.RoleWorker, p, fmt.Sprintf("wordcount-worker-%s-%s", p.OS, p.Arch))
	}
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	return m
}

// world is every dependency of a launch as a fake: a builder that writes a
// DIST, a capture that returns a canned pipeline for the worker it is
// given, the job server of grpctest behind the dialer and the embedded
// runner, and a worker pool that starts nothing.
type world struct {
	t    *testing.T
	jobs *grpctest.JobServer
	conn *grpc.ClientConn
	logs syncbuf.Buffer
	// failures is the pool's Failures.
	failures <-chan error

	mu            sync.Mutex
	builds        []build.Options
	captures      []capture.Options
	dials         []string
	pools         []loopback.Options
	poolClosed    bool
	runnerStarted bool
	runnerClosed  bool
}

func newWorld(t *testing.T, job grpctest.Job) *world {
	w := &world{t: t}
	w.jobs, w.conn = grpctest.ServeJobs(t, job)
	return w
}

// wrapper is the worker wrapper the launch is given: the pool must get it.
var wrapper = wrap.WrapperFunc(func(context.Context, *wrap.Launch) error { return nil })

func (w *world) deps() launch.Deps {
	return launch.Deps{
		Build: func(_ context.Context, o build.Options) (*build.Manifest, error) {
			w.mu.Lock()
			w.builds = append(w.builds, o)
			w.mu.Unlock()
			return writeDist(w.t, o.OutDir, o.Targets...), nil
		},
		Capture: w.capture,
		Dial: func(_ context.Context, endpoint string, _ submit.DialOptions) (*grpc.ClientConn, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.dials = append(w.dials, endpoint)
			return w.conn, nil
		},
		StartRunner: func(context.Context, embeddedrunner.Options) (launch.Runner, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.runnerStarted = true
			return fakeRunner{w}, nil
		},
		StartPool: func(_ context.Context, o loopback.Options) (launch.WorkerPool, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.pools = append(w.pools, o)
			return fakePool{w}, nil
		},
		Executable: func() (string, error) { return beamctlPath, nil },
		Wrapper:    wrapper,
		Dataflow: func(context.Context, dataflow.Options) (*dataflow.Job, error) {
			return nil, errors.New("a Job API launch ran the Dataflow runner")
		},
		Digests: digest.NewCache(),
		Logger:  slog.New(slog.NewTextHandler(&w.logs, nil)),
	}
}

// capture is the launcher's submission, as capture.Capture returns it: the
// Go environment declares the worker with its digest, and a transform
// that the job's metrics name by id.
func (w *world) capture(ctx context.Context, o capture.Options) (*capture.Captured, error) {
	w.mu.Lock()
	w.captures = append(w.captures, o)
	w.mu.Unlock()
	sum, err := o.Digests.Sum(ctx, o.WorkerPath)
	if err != nil {
		return nil, err
	}
	worker := beam.File{Path: o.WorkerPath, SHA256: sum.SHA256}
	docker, err := proto.Marshal(&pipepb.DockerPayload{ContainerImage: "apache/beam_go_sdk:2.77.0"})
	if err != nil {
		return nil, err
	}
	opts, err := structpb.NewStruct(map[string]any{"beam:option:go_options:v1": map[string]any{"options": map[string]any{"input": "in.txt"}}})
	if err != nil {
		return nil, err
	}
	return &capture.Captured{
		Pipeline: &pipepb.Pipeline{Components: &pipepb.Components{
			Environments: map[string]*pipepb.Environment{"go": {Urn: beam.DockerEnvURN, Payload: docker,
				Dependencies: []*pipepb.ArtifactInformation{beam.FileArtifact(worker, beam.GoWorkerRoleURN)}}},
			Transforms: map[string]*pipepb.PTransform{"t1": {UniqueName: "CountWords", EnvironmentId: "go"}},
		}},
		Options: opts,
		JobName: cmp.Or(o.JobName, jobName),
		Worker:  worker,
	}, nil
}

type fakeRunner struct{ w *world }

func (r fakeRunner) Conn() *grpc.ClientConn { return r.w.conn }
func (r fakeRunner) Endpoint() string       { return "127.0.0.1:8073" }
func (r fakeRunner) Close() error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.runnerClosed = true
	return nil
}

type fakePool struct{ w *world }

func (p fakePool) Address() string        { return poolAddress }
func (p fakePool) Failures() <-chan error { return p.w.failures }
func (p fakePool) Close() error {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	p.w.poolClosed = true
	return nil
}

// counter is a user counter of transform t1, as a runner reports it.
func counter(name string, v int64) *pipepb.MonitoringInfo {
	return &pipepb.MonitoringInfo{
		Urn:     "beam:metric:user:sum_int64:v1",
		Type:    "beam:metrics:sum_int64:v1",
		Labels:  map[string]string{"PTRANSFORM": "t1", "NAMESPACE": "wordcount", "NAME": name},
		Payload: binary.AppendUvarint(nil, uint64(v)),
	}
}

// goEnv is the Go environment of the pipeline the job server was given.
func goEnv(t *testing.T, jobs *grpctest.JobServer) *pipepb.Environment {
	t.Helper()
	env := jobs.Prepared().GetPipeline().GetComponents().GetEnvironments()["go"]
	if env == nil {
		t.Fatalf("the job server was given no Go environment: %v", jobs.Prepared())
	}
	return env
}

// TestRun drives launch.Run end to end, every dependency a fake: the build,
// the capture, the job server (prepare, staging, run, streams, cancel,
// metrics), the embedded runner and the local pool. Each case checks the
// Result's Outcome, State and error, which RPCs the job server received,
// and that the launch ended within the bounds of its waits.
func TestRun(t *testing.T) {
	t.Parallel()
	const (
		info = jobpb.JobMessage_JOB_MESSAGE_BASIC
		errm = jobpb.JobMessage_JOB_MESSAGE_ERROR
	)
	states := func(s ...jobpb.JobState_Enum) []jobpb.JobState_Enum { return s }
	metrics := &jobpb.MetricResults{Committed: []*pipepb.MonitoringInfo{counter("words", 42)}}
	for _, tc := range []struct {
		name string
		job  grpctest.Job
		// spec changes the spec of a launch built for linux/amd64 and run
		// on a job server, with short waits.
		spec func(*testing.T, *launch.Spec)
		// local: the worker runs on this machine, which must be Linux.
		local bool
		// On the first RUNNING state the test interrupts (cancels ctx, as
		// Ctrl-C does), aborts (interrupts, then ends Waits.Abort once the
		// runner is asked to cancel: a second Ctrl-C), or has the pool
		// report a failed worker.
		interrupt, abort, workerFails bool

		runErr  string // Run's error; "": a Result
		outcome launch.Outcome
		state   jobpb.JobState_Enum
		err     error  // matched with errors.Is; nil: no error, unless errText
		errText string // in the error's text
		// calls are RPC counts the job server must have received; every
		// launch that submits prepares, stages and runs once.
		calls   map[string]int
		metrics []submit.Metric
		// staged: the worker is staged; otherwise nothing is.
		staged bool
		// waits bound the waits once the job is to stop: only cases of a
		// wait that runs out set one, and the launch must end within it.
		// The defaults are long enough for any machine, and end at the
		// test's deadline.
		waits launch.Waits
		log   string
	}{
		{name: "done", job: grpctest.Job{States: states(R, D), Messages: []*jobpb.JobMessagesResponse{grpctest.Message(info, "counting")}, Metrics: metrics},
			outcome: launch.Done, state: D, staged: true,
			calls:   map[string]int{"Cancel": 0, "GetJobMetrics": 1, "GetStateStream": 1, "GetMessageStream": 1},
			metrics: []submit.Metric{{Kind: submit.Counter, Namespace: "wordcount", Name: "words", Transform: "CountWords", Committed: true, Counter: 42}}},
		{name: "failed, with the runner's cause", job: grpctest.Job{States: states(R, F), Messages: []*jobpb.JobMessagesResponse{
			grpctest.Message(errm, "panic: open in.txt: no such file or directory")}},
			outcome: launch.Failed, state: F, staged: true, errText: "job job-1 failed: panic: open in.txt: no such file or directory",
			calls: map[string]int{"Cancel": 0, "GetJobMetrics": 1}},
		{name: "cancelled by someone else", job: grpctest.Job{States: states(R, C)},
			outcome: launch.Cancelled, state: C, staged: true, calls: map[string]int{"Cancel": 0, "GetJobMetrics": 1}},
		{name: "interrupted, cancel confirmed", job: grpctest.Job{States: states(R)}, interrupt: true,
			outcome: launch.Interrupted, state: C, staged: true, calls: map[string]int{"Cancel": 1, "GetJobMetrics": 1}},
		{name: "interrupted, cancel never confirmed", job: grpctest.Job{States: states(R), IgnoreCancel: true}, interrupt: true,
			outcome: launch.Interrupted, state: R, staged: true, err: launch.ErrNotConfirmed, errText: "it may still be running",
			calls: map[string]int{"Cancel": 1}, waits: launch.Waits{Cancel: cancelWait}, log: "gave up waiting for the runner to confirm the cancellation"},
		{name: "second interrupt ends the waits", job: grpctest.Job{States: states(R), IgnoreCancel: true, HangMetrics: true},
			abort: true, outcome: launch.Interrupted, state: R, staged: true, err: launch.ErrNotConfirmed,
			calls: map[string]int{"Cancel": 1}, log: "stopped waiting for the runner to confirm the cancellation"},
		// The job is not cancelled: it may well run on, and beamctl cannot
		// tell; the error names it.
		{name: "state stream dropped mid-job", job: grpctest.Job{States: states(R), StatesEnd: errLost},
			outcome: launch.Failed, state: R, staged: true, errText: "lost track of job job-1",
			calls: map[string]int{"Cancel": 0, "GetStateStream": 1, "GetJobMetrics": 1}},
		{name: "job server stops answering mid-job", job: grpctest.Job{States: states(R), StatesEnd: status.Error(codes.Unavailable, "connection reset")},
			outcome: launch.Failed, state: R, staged: true, err: submit.ErrUnreachable, errText: "the job may still be running there",
			calls: map[string]int{"Cancel": 0}},
		{name: "metrics hang after the end", job: grpctest.Job{States: states(R, D), HangMetrics: true},
			outcome: launch.Done, state: D, staged: true, calls: map[string]int{"GetJobMetrics": 1},
			waits: launch.Waits{Metrics: metricsWait}, log: "gave up waiting for the job's metrics"},
		{name: "detached", job: grpctest.Job{States: states(R)}, spec: func(_ *testing.T, s *launch.Spec) { s.Detach = true },
			outcome: launch.Detached, state: R, staged: true,
			calls: map[string]int{"GetStateStream": 0, "GetMessageStream": 0, "Cancel": 0, "GetJobMetrics": 0}},
		{name: "from a DIST", job: grpctest.Job{States: states(R, D)},
			spec: func(t *testing.T, s *launch.Spec) {
				dist := s.Build.OutDir
				writeDist(t, dist, linuxAMD64)
				s.Build, s.Dist = nil, dist
			},
			outcome: launch.Done, state: D, staged: true},
		{name: "job server refuses the pipeline", job: grpctest.Job{PrepareErr: status.Error(codes.InvalidArgument, "unknown coder")},
			runErr: "rejected the pipeline", calls: map[string]int{"Prepare": 1, "ReverseArtifactRetrievalService": 0, "Run": 0}},
		{name: "process environment on this machine", job: grpctest.Job{States: states(R, D)},
			spec:    func(_ *testing.T, s *launch.Spec) { s.Environment = launch.Process },
			outcome: launch.Done, state: D, staged: true},
		{name: "loopback workers for a job server, a worker fails", job: grpctest.Job{States: states(R)}, local: true, workerFails: true,
			spec:    func(_ *testing.T, s *launch.Spec) { s.Environment = launch.Loopback },
			outcome: launch.Failed, state: C, staged: true, err: errWorker, calls: map[string]int{"Cancel": 1}},
		{name: "embedded runner", job: grpctest.Job{States: states(R, D), Metrics: metrics}, local: true,
			spec:    func(_ *testing.T, s *launch.Spec) { s.Endpoint = "" },
			outcome: launch.Done, state: D, calls: map[string]int{"GetJobMetrics": 1},
			metrics: []submit.Metric{{Kind: submit.Counter, Namespace: "wordcount", Name: "words", Transform: "CountWords", Committed: true, Counter: 42}}},
		{name: "embedded runner, a worker fails", job: grpctest.Job{States: states(R)}, local: true, workerFails: true,
			spec:    func(_ *testing.T, s *launch.Spec) { s.Endpoint = "" },
			outcome: launch.Failed, state: C, err: errWorker, calls: map[string]int{"Cancel": 1}},
		{name: "embedded runner, interrupted", job: grpctest.Job{States: states(R)}, local: true, interrupt: true,
			spec:    func(_ *testing.T, s *launch.Spec) { s.Endpoint = "" },
			outcome: launch.Interrupted, state: C, calls: map[string]int{"Cancel": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.local && runtime.GOOS != "linux" {
				t.Skip("workers run on this machine on Linux only")
			}
			w := newWorld(t, tc.job)
			u := newUser(t, w.jobs, tc.interrupt, tc.abort, tc.workerFails)
			w.failures = u.failures
			target := linuxAMD64
			if tc.local {
				target = build.HostPlatform()
			}
			s := launch.Spec{
				Build:    &build.Options{Package: "./wordcount", Targets: []build.Platform{target}, OutDir: t.TempDir()},
				Args:     []string{"--input=in.txt"},
				Endpoint: endpoint,
				Dir:      t.TempDir(),
				Waits:    launch.Waits{Cancel: tc.waits.Cancel, Metrics: tc.waits.Metrics, Abort: u.abort},
			}
			if tc.spec != nil {
				tc.spec(t, &s)
			}
			var (
				events      []string
				submissions []launch.Submission
			)
			obs := launch.Observer{
				Submitted: func(sub launch.Submission) { submissions = append(submissions, sub) },
				Job: func(e submit.Event) {
					events = append(events, e.State+e.Text)
					u.event(e)
				},
			}

			start := time.Now()
			res, err := launch.Run(u.ctx, s, w.deps(), obs)
			took := time.Since(start)

			for method, want := range tc.calls {
				if got := w.jobs.Calls(method); got != want {
					t.Errorf("%s called %d times; want %d (all calls: %v)", method, got, want, w.jobs.AllCalls())
				}
			}
			if tc.runErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.runErr) || res != nil {
					t.Fatalf("Run = %v, %v; want no result and an error saying %q", res, err, tc.runErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v\nlog:\n%s", err, w.logs.String())
			}
			if limit := tc.waits.Cancel + tc.waits.Metrics + slack; took > limit {
				t.Errorf("Run took %v; want at most %v", took, limit)
			}
			ending{outcome: tc.outcome, state: tc.state, err: tc.err, errText: tc.errText, workerFailed: tc.workerFails,
				log: tc.log}.check(t, res, w.logs.String())
			if tc.metrics != nil && !reflect.DeepEqual(res.Metrics, tc.metrics) {
				t.Errorf("Metrics = %+v; want %+v", res.Metrics, tc.metrics)
			}

			// The job submitted is the one captured, from the binaries
			// built or found in DIST.
			embedded := s.Endpoint == ""
			if res.Job == nil || res.Job.ID != grpctest.JobID || res.Job.Name != jobName || res.Embedded != embedded {
				t.Errorf("Job %+v, Embedded %v; want %s (%s), embedded %v", res.Job, res.Embedded, grpctest.JobID, jobName, embedded)
			}
			if len(submissions) != 1 || submissions[0].Job != res.Job || submissions[0].Embedded != embedded {
				t.Errorf("Submitted told of %+v; want once, of the Result's job", submissions)
			}
			for method, want := range map[string]int{"Prepare": 1, "ReverseArtifactRetrievalService": 1, "Run": 1} {
				if got := w.jobs.Calls(method); got != want {
					t.Errorf("%s called %d times; want %d", method, got, want)
				}
			}
			if res.Manifest == nil {
				t.Fatal("Result has no manifest")
			}
			dist := s.Dist
			if s.Build != nil {
				dist = s.Build.OutDir
			}
			worker := res.Manifest.Workers()[0]
			if len(w.captures) != 1 {
				t.Fatalf("%d captures; want 1", len(w.captures))
			}
			c := w.captures[0]
			if want := filepath.Join(dist, "wordcount"); c.Launcher != want || c.WorkerPath != filepath.Join(dist, worker.File) || !slices.Equal(c.Args, s.Args) {
				t.Errorf("capture ran %s with worker %s and %q; want %s, %s and %q", c.Launcher, c.WorkerPath, c.Args, want, filepath.Join(dist, worker.File), s.Args)
			}
			if got := len(w.builds); (s.Build != nil) != (got == 1) {
				t.Errorf("%d builds for a spec with Build %v", got, s.Build != nil)
			}
			if got := len(w.dials); embedded != (got == 0) {
				t.Errorf("dialled %q; want the job server once, unless the job runs on the embedded runner", w.dials)
			}
			if tc.outcome == launch.Detached && len(events) > 0 {
				t.Errorf("Job told of %q; want nothing of a job not followed", events)
			}
			if tc.outcome != launch.Detached && (!slices.Contains(events, R.String()) || !slices.Contains(events, tc.state.String())) {
				t.Errorf("Job told of %q; want RUNNING and the job's last state", events)
			}

			// Staged: the worker, whole, from DIST; with nothing staged the
			// worker reaches the pool another way.
			var staged []grpctest.StagedFile
			var stagedBytes int64
			if tc.staged {
				staged = []grpctest.StagedFile{{Path: c.WorkerPath, SHA256: worker.SHA256, Size: worker.Size}}
				stagedBytes = worker.Size
			}
			if got := w.jobs.Staged(); !slices.Equal(got, staged) {
				t.Errorf("staged %+v; want %+v", got, staged)
			}
			if res.StagedBytes != stagedBytes {
				t.Errorf("StagedBytes = %d; want %d", res.StagedBytes, stagedBytes)
			}
			if got := w.jobs.StagingWorkerID(); !slices.Equal(got, []string{grpctest.PreparationID}) {
				t.Errorf("staging worker_id = %q; want the preparation's", got)
			}

			// The environment is rewritten as the spec says.
			env := goEnv(t, w.jobs)
			switch e := s.Environment; {
			case embedded || e == launch.Loopback:
				var pl pipepb.ExternalPayload
				if err := proto.Unmarshal(env.GetPayload(), &pl); err != nil || env.GetUrn() != beam.ExternalEnvURN || pl.GetEndpoint().GetUrl() != poolAddress {
					t.Errorf("Go environment %s %v (%v); want external, the pool at %s", env.GetUrn(), &pl, err, poolAddress)
				}
				// The embedded runner's pool is handed the worker directly;
				// a job server's fetches it.
				var params map[string]string
				if embedded {
					params = loopback.LocalParams(c.WorkerPath, worker.SHA256)
				}
				if !maps.Equal(pl.GetParams(), params) {
					t.Errorf("external environment's parameters %v; want %v", pl.GetParams(), params)
				}
				if len(w.pools) != 1 || w.pools[0].Wrapper == nil || w.pools[0].Dir != s.Dir {
					t.Errorf("pools started %+v; want one, with the launch's wrapper, in %s", w.pools, s.Dir)
				}
				if !w.poolClosed {
					t.Error("the pool is left running")
				}
				if embedded && (!w.runnerStarted || !w.runnerClosed) {
					t.Errorf("embedded runner started %v, closed %v; want both", w.runnerStarted, w.runnerClosed)
				}
			case e == launch.Process:
				var pl pipepb.ProcessPayload
				if err := proto.Unmarshal(env.GetPayload(), &pl); err != nil || env.GetUrn() != beam.ProcessEnvURN || pl.GetCommand() != beamctlPath {
					t.Errorf("Go environment %s %v (%v); want process, beamctl's own path as the boot command", env.GetUrn(), &pl, err)
				}
			default:
				var pl pipepb.DockerPayload
				if err := proto.Unmarshal(env.GetPayload(), &pl); err != nil || env.GetUrn() != beam.DockerEnvURN || pl.GetContainerImage() != "apache/beam_go_sdk:2.77.0" {
					t.Errorf("Go environment %s %v (%v); want docker, the SDK image of the manifest's Beam version", env.GetUrn(), &pl, err)
				}
			}
			if (w.runnerStarted || len(w.pools) > 0) && !embedded && s.Environment != launch.Loopback {
				t.Errorf("runner started %v, %d pools, for workers that run elsewhere", w.runnerStarted, len(w.pools))
			}
		})
	}
}

func (p fakePool) StopWorkers(context.Context, func(string) bool) {}

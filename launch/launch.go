package launch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/dataflow"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/submit"
	"github.com/beamctl/beamctl/wrap"
)

// Runner is a job server this process runs: the embedded runner.
type Runner interface {
	Conn() *grpc.ClientConn
	Endpoint() string
	Close() error
}

// WorkerPool is what a launch needs of the worker pool on this machine
// (loopback.Start's *boot.Pool, the one pool beamctl has): where runners
// reach it, and which workers failed.
type WorkerPool interface {
	Address() string
	// Failures delivers workers that could not start or exited early.
	Failures() <-chan error
	// StopWorkers stops the workers whose runner ids match and returns
	// once they have exited, or when ctx ends.
	StopWorkers(ctx context.Context, match func(id string) bool)
	Close() error
}

// Deps are what a launch uses from the world; the zero value uses the
// real ones.
type Deps struct {
	Build       func(context.Context, build.Options) (*build.Manifest, error)
	Capture     func(context.Context, capture.Options) (*capture.Captured, error)
	Dial        func(ctx context.Context, endpoint string, o submit.DialOptions) (*grpc.ClientConn, error)
	StartRunner func(context.Context, embeddedrunner.Options) (Runner, error)
	StartPool   func(context.Context, loopback.Options) (WorkerPool, error)
	// Executable is beamctl's own path, the default boot command of the
	// Process environment for a job server on this machine.
	Executable func() (string, error)
	// Wrapper says how workers on this machine start; default
	// wrap.Emulated.
	Wrapper wrap.Wrapper
	// Dataflow runs the launcher with the SDK's Dataflow runner; default
	// dataflow.Submit.
	Dataflow func(context.Context, dataflow.Options) (*dataflow.Job, error)
	// Digests is the run's digest cache: each file is hashed at most once.
	// Default: a new cache.
	Digests *digest.Cache
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
}

func (d *Deps) defaults() {
	if d.Build == nil {
		d.Build = build.Build
	}
	if d.Capture == nil {
		d.Capture = capture.Capture
	}
	if d.Dial == nil {
		d.Dial = submit.Dial
	}
	if d.StartRunner == nil {
		d.StartRunner = func(ctx context.Context, o embeddedrunner.Options) (Runner, error) {
			return embeddedrunner.Start(ctx, o)
		}
	}
	if d.StartPool == nil {
		d.StartPool = func(ctx context.Context, o loopback.Options) (WorkerPool, error) {
			return loopback.Start(ctx, o)
		}
	}
	if d.Dataflow == nil {
		d.Dataflow = dataflow.Submit
	}
	if d.Executable == nil {
		d.Executable = os.Executable
	}
	if d.Digests == nil {
		d.Digests = digest.NewCache()
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
}

// Observer is told how the run goes; every field is optional. Calls may
// come from several goroutines, one at a time.
type Observer struct {
	// Build is told of each binary's build progress.
	Build func(build.Event)
	// Staging is told of each staged chunk.
	Staging func(stage.Progress)
	// StagingDone is called once staging has ended, well or not.
	StagingDone func()
	// Submitted is told of the job once it runs.
	Submitted func(Submission)
	// Job is told of the job's state changes and messages.
	Job func(submit.Event)
	// Debugging is told of each program that runs under Delve, before it
	// starts.
	Debugging func(DebugTarget)
	// Transforms is told, when the launch debugs, of the captured
	// pipeline's DoFn transforms (DoFnTransforms): where to break.
	Transforms func([]string)
}

// Submission is a job that runs.
type Submission struct {
	Job *submit.Job
	// Embedded is true when the job runs on the embedded runner.
	Embedded bool
}

// Outcome is how a run ended.
type Outcome int

const (
	// Done: the job finished successfully.
	Done Outcome = iota
	// Failed: the job failed, or a worker did.
	Failed
	// Cancelled: someone cancelled the job.
	Cancelled
	// Interrupted: the caller's context ended; the job was cancelled (a
	// Dataflow job runs on: only the wait for it ended).
	Interrupted
	// Detached: the job runs on; it was not followed.
	Detached
)

// Result is what a launch that got a job running came to.
type Result struct {
	Manifest *build.Manifest
	Job      *submit.Job
	Embedded bool
	Outcome  Outcome
	// State is the job's last state.
	State jobpb.JobState_Enum
	// Err says why the job failed: the follow's error, or the worker's.
	Err error
	// WorkerFailed is true when a worker on this machine failed, which
	// made the launch cancel the job.
	WorkerFailed bool
	Metrics      []submit.Metric
	// Duration runs from submission to the job's end.
	Duration time.Duration
	// BuildDuration is how long the build (or the check of Dist) took.
	BuildDuration time.Duration
	// StagedBytes is what was staged to the job server: 0 when the worker
	// comes in an image.
	StagedBytes int64
	// Image is the worker image by digest, when the job's workers start
	// from one.
	Image string
	// Dataflow is the Dataflow job, for a Dataflow launch (whose Job is
	// nil).
	Dataflow *DataflowJob
}

// binaries are the launcher and worker a launch runs.
type binaries struct {
	manifest         *build.Manifest
	launcher, worker string
	// dir is the output directory the binaries are in.
	dir string
}

// Run performs the launch. An error means no job ran (bad spec, build or
// capture failure, job server unreachable, submission refused); once a job
// runs, how it ended is in the Result.
func Run(ctx context.Context, s Spec, d Deps, obs Observer) (*Result, error) {
	d.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.defaultDir(); err != nil {
		return nil, err
	}
	if s.Dataflow != nil {
		return s.runDataflow(ctx, d, obs)
	}
	// Delve must be there before minutes of building.
	dbg, err := s.debugger(obs)
	if err != nil {
		return nil, err
	}
	if dbg != nil {
		d.Wrapper = dbg.wrapper()
	}
	// The embedded runner and its pool do not depend on the build: they
	// start while it runs.
	var local *localRunner
	if s.Endpoint == "" {
		local = s.startLocal(ctx, d)
		defer local.close()
	}
	return s.once(ctx, d, obs, dbg, local)
}

// once builds or finds the binaries, captures the pipeline and runs it, on
// local when it is not nil.
func (s *Spec) once(ctx context.Context, d Deps, obs Observer, dbg *debugger, local *localRunner) (*Result, error) {
	start := time.Now()
	bins, err := s.binaries(ctx, d, obs)
	if err != nil {
		return nil, err
	}
	built := time.Since(start)
	if dbg != nil {
		dbg.setModule(bins.manifest.Module)
	}

	// Reach the job server before running the launcher: a wrong endpoint is
	// the likelier mistake, and the cheaper one to report.
	var conn *grpc.ClientConn
	if s.Endpoint != "" {
		if s.Dial.Logger == nil {
			s.Dial.Logger = d.Logger
		}
		if conn, err = d.Dial(ctx, s.Endpoint, s.Dial); err != nil {
			return nil, err
		}
		defer conn.Close()
	}
	underDelve, launcherDone, err := dbg.launcher()
	if err != nil {
		return nil, err
	}
	co := s.captureOptions(d, bins)
	co.Debugger = underDelve
	captured, err := d.Capture(ctx, co)
	launcherDone()
	if err != nil {
		return nil, err
	}
	if dbg != nil && obs.Transforms != nil {
		obs.Transforms(DoFnTransforms(captured.Pipeline))
	}
	var res *Result
	if conn == nil {
		res, err = s.embedded(ctx, d, obs, local, captured)
	} else {
		res, err = s.remote(ctx, d, obs, conn, bins, captured)
	}
	if res != nil {
		res.Manifest = bins.manifest
		res.BuildDuration = built
	}
	return res, err
}

// captureOptions run the launcher of bins with the spec's arguments.
func (s *Spec) captureOptions(d Deps, bins *binaries) capture.Options {
	return capture.Options{
		Launcher:   bins.launcher,
		WorkerPath: bins.worker,
		Args:       s.Args,
		JobName:    s.JobName,
		Timeout:    s.captureTimeout(),
		Stdout:     s.LauncherOutput,
		Stderr:     s.LauncherOutput,
		Logger:     d.Logger,
		Digests:    d.Digests,
	}
}

// binaries builds the pipeline, or finds it in Dist, and checks that this
// machine can run the worker when it is to.
func (s *Spec) binaries(ctx context.Context, d Deps, obs Observer) (*binaries, error) {
	if s.Build != nil {
		o := *s.Build
		if len(o.Targets) == 0 {
			return nil, problem.Usagef("give one", "a launch needs a worker {Target}")
		}
		if o.OutDir == "" {
			// Binaries built to run now are not a release: they must not
			// replace the ones a build published for one.
			dir, err := o.CacheOut()
			if err != nil {
				return nil, err
			}
			o.OutDir = dir
		}
		// Fail before minutes of building if the worker cannot run here.
		if s.Debug != nil {
			if err := debuggable(o.Targets[0]); err != nil {
				return nil, err
			}
			o.Debug = true
		}
		if s.LocalWorkers() && !s.captureOnly {
			if err := loopback.Check(o.Targets[0].OS, o.Targets[0].Arch); err != nil {
				return nil, err
			}
		}
		o.OnEvent = obs.Build
		o.Digests = d.Digests
		// An image needs its entrypoint.
		o.Boot = s.Image != nil
		// The workers run here: a host worker is the launcher itself, one
		// binary to link instead of two.
		o.Local = s.LocalWorkers()
		if o.Logger == nil {
			o.Logger = d.Logger
		}
		m, err := d.Build(ctx, o)
		if err != nil {
			return nil, err
		}
		outDir, err := o.OutPath()
		if err != nil {
			return nil, err
		}
		launcher, ok := m.Launcher(build.HostPlatform())
		if !ok {
			return nil, fmt.Errorf("the build made no launcher for %s", build.HostPlatform())
		}
		i := slices.IndexFunc(m.Workers(), func(w build.Binary) bool { return w.Platform == o.Targets[0] })
		if i < 0 {
			return nil, fmt.Errorf("the build made no worker for %s", o.Targets[0])
		}
		return &binaries{manifest: m, launcher: filepath.Join(outDir, launcher.File),
			worker: filepath.Join(outDir, m.Workers()[i].File), dir: outDir}, nil
	}
	return s.distBinaries(ctx, d)
}

// distBinaries takes the launcher for this machine and the chosen worker
// from Dist, each checked against the manifest before anything runs.
func (s *Spec) distBinaries(ctx context.Context, d Deps) (*binaries, error) {
	dist, err := filepath.Abs(s.Dist)
	if err != nil {
		return nil, err
	}
	m, err := build.ReadManifest(s.Dist)
	if err != nil {
		return nil, err
	}
	host := build.HostPlatform()
	launcher, ok := m.Launcher(host)
	if !ok {
		return nil, problem.Usagef(fmt.Sprintf("build it on a %s machine, or submit from one that matches its launcher", host),
			"%s has no launcher for this machine (%s)", filepath.Join(s.Dist, build.ManifestFile), host)
	}
	workers := m.Workers()
	var known []build.Platform
	for _, w := range workers {
		known = append(known, w.Platform)
	}
	var worker build.Binary
	switch {
	case s.Target != (build.Platform{}):
		i := slices.IndexFunc(workers, func(w build.Binary) bool { return w.Platform == s.Target })
		if i < 0 {
			return nil, problem.Usagef(fmt.Sprintf("build one for {Target} %s", s.Target),
				"%s has no worker for %s: it has %s", s.Dist, s.Target, PlatformList(known))
		}
		worker = workers[i]
	case len(workers) == 1, len(workers) > 1 && s.captureOnly:
		// A capture runs no worker: any of them is the pipeline's.
		worker = workers[0]
	case len(workers) == 0:
		return nil, problem.Usagef("build one for a {Target} OS/ARCH", "%s has no worker", filepath.Join(s.Dist, build.ManifestFile))
	default:
		return nil, problem.Usagef("choose one with {Target}", "%s has workers for %s", s.Dist, PlatformList(known))
	}
	if s.LocalWorkers() && !s.captureOnly {
		if err := loopback.Check(worker.Platform.OS, worker.Platform.Arch); err != nil {
			return nil, err
		}
	}
	if s.Debug != nil {
		if err := debuggable(worker.Platform); err != nil {
			return nil, err
		}
	}
	for _, b := range []build.Binary{launcher, worker} {
		path := filepath.Join(dist, b.File)
		sum, err := d.Digests.Sum(ctx, path)
		if err != nil {
			return nil, &problem.Error{Reason: fmt.Sprintf("%s is missing or unreadable (%v)", path, rootCause(err)),
				Fix: "build the pipeline into " + s.Dist + " again", Usage: true, Err: &BinaryError{Dist: s.Dist, Path: path}}
		}
		if sum.SHA256 != b.SHA256 || sum.Size != b.Size {
			return nil, &problem.Error{Reason: fmt.Sprintf("%s does not match manifest.json (sha256 %s, want %s)", path, sum.SHA256, b.SHA256),
				Fix: "build the pipeline into " + s.Dist + " again", Usage: true, Err: &BinaryError{Dist: s.Dist, Path: path}}
		}
	}
	return &binaries{manifest: m, launcher: filepath.Join(dist, launcher.File), worker: filepath.Join(dist, worker.File), dir: dist}, nil
}

// BinaryError is a binary of an output directory that is missing or
// differs from its manifest.
type BinaryError struct{ Dist, Path string }

func (e *BinaryError) Error() string { return e.Path + " does not match " + e.Dist + "'s manifest" }

// PlatformList words platforms for messages.
func PlatformList(ps []build.Platform) string {
	if len(ps) == 0 {
		return "none"
	}
	s := ps[0].String()
	for _, p := range ps[1:] {
		s += ", " + p.String()
	}
	return s
}

func (s *Spec) startPool(ctx context.Context, d Deps, address string) (WorkerPool, error) {
	pool, err := d.StartPool(ctx, loopback.Options{
		Address: address,
		Expose:  s.Expose,
		Dir:     s.Dir,
		Output:  s.WorkerOutput,
		Logger:  d.Logger,
		Wrapper: d.Wrapper,
		Digests: d.Digests,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the worker pool: %w", err)
	}
	return pool, nil
}

// localRunner is the embedded runner and its pool, started in the
// background.
type localRunner struct {
	done   chan struct{}
	pool   WorkerPool
	runner Runner
	err    error
}

func (s *Spec) startLocal(ctx context.Context, d Deps) *localRunner {
	l := &localRunner{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// The pool outlives the runner: prism brings the whole process down
		// if it cannot reach the pool for a worker it still wants to start.
		if l.pool, l.err = s.startPool(ctx, d, "127.0.0.1:0"); l.err != nil {
			return
		}
		if l.runner, l.err = d.StartRunner(ctx, embeddedrunner.Options{Logger: d.Logger, AllowUnconfined: s.Expose}); l.err != nil {
			l.err = fmt.Errorf("starting the embedded runner: %w", l.err)
		}
	}()
	return l
}

// wait returns the runner and pool once they are up.
func (l *localRunner) wait() (Runner, WorkerPool, error) {
	<-l.done
	return l.runner, l.pool, l.err
}

// close stops the runner, then the pool.
func (l *localRunner) close() {
	<-l.done
	if l.runner != nil {
		l.runner.Close()
	}
	if l.pool != nil {
		l.pool.Close()
	}
}

func (s *Spec) embedded(ctx context.Context, d Deps, obs Observer, local *localRunner, captured *capture.Captured) (*Result, error) {
	runner, pool, err := local.wait()
	if err != nil {
		return nil, err
	}
	// The pool is handed the worker directly: staging it would copy the
	// whole binary into prism's memory, which is this process's.
	p := captured.Pipeline
	if err := beam.UseExternal(p, pool.Address(), loopback.LocalParams(captured.Worker.Path, captured.Worker.SHA256)); err != nil {
		return nil, err
	}
	if err := beam.DropWorkerArtifacts(p); err != nil {
		return nil, err
	}
	start := time.Now()
	job, err := submit.Submit(ctx, runner.Conn(), captured, submit.SubmitOptions{Logger: d.Logger, Digests: d.Digests})
	if err != nil {
		return nil, err
	}
	if obs.Submitted != nil {
		obs.Submitted(Submission{Job: job, Embedded: true})
	}
	ofJob := func(id string) bool { return embeddedrunner.JobOfWorker(id) == job.ID }
	failures, stopFailures := jobFailures(pool.Failures(), ofJob, d.Logger)
	res := follow(ctx, runner.Conn(), job, s.followOptions(d, obs, failures), start, false)
	stopFailures()
	// The pool outlives the job when a session runs the next one: the
	// job's workers must be gone before it does. The runner stops them
	// itself, soon after the job's end.
	wctx, end := s.Waits.begin(context.WithoutCancel(ctx), workersWait)
	pool.StopWorkers(wctx, ofJob)
	ended(d.Logger, wctx, nil, "the job's workers to exit", job.ID, workersWait)
	end()
	res.Embedded = true
	return res, nil
}

// workersWait bounds the wait for a job's workers to exit after its end:
// a worker gets StopGrace after SIGTERM, then is killed.
const workersWait = 15 * time.Second

// jobFailures forwards the failures of the job's workers from a pool's
// failures, until stop: the pool may have served the workers of a job
// before, whose late failures are not this job's.
func jobFailures(all <-chan error, ofJob func(id string) bool, log *slog.Logger) (<-chan error, func()) {
	out := make(chan error, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case err := <-all:
				var we *boot.WorkerError
				if errors.As(err, &we) && we.ID != "" && !ofJob(we.ID) {
					log.Debug("a worker of an earlier job failed", "error", err)
					continue
				}
				select {
				case out <- err:
				case <-done:
					return
				}
			}
		}
	}()
	return out, func() {
		close(done)
		wg.Wait()
	}
}

func (s *Spec) remote(ctx context.Context, d Deps, obs Observer, conn *grpc.ClientConn, bins *binaries, captured *capture.Captured) (*Result, error) {
	var failures <-chan error
	p := captured.Pipeline
	var params map[string]string
	// workerImage is the image by digest the job's workers start from.
	var workerImage string
	if s.Image != nil {
		image, sha, err := s.workerImage(ctx, d, bins)
		if err != nil {
			return nil, err
		}
		workerImage = image
		if s.environment() == Docker {
			s.EnvironmentConfig = image
		}
		// The worker is in the image: nothing to stage. An External pool
		// is told which worker the job expects, so a stale image is refused.
		params = map[string]string{boot.ParamWorkerSHA256: sha}
		if err := beam.DropWorkerArtifacts(p); err != nil {
			return nil, err
		}
	}
	switch env := s.environment(); env {
	case Docker:
		image := s.EnvironmentConfig
		if image == "" {
			var err error
			if image, err = DefaultImage(bins.manifest.BeamVersion); err != nil {
				return nil, err
			}
		}
		if err := beam.UseDocker(p, image); err != nil {
			return nil, err
		}
	case Process:
		command := s.EnvironmentConfig
		if command != "" && netaddr.Local(s.Endpoint) {
			// A job server that cannot start the command leaves the job
			// running with no worker, and says so only in its own log. A
			// local endpoint may still be forwarded to another machine,
			// where the path would be right: a warning, not a refusal.
			if _, err := exec.LookPath(command); err != nil {
				d.Logger.Warn("the job server runs the process environment's command, which cannot run on this machine; unless the job server is elsewhere, the job will wait for workers that never start",
					"command", command, "error", err)
			}
		}
		if command == "" {
			if !netaddr.Local(s.Endpoint) {
				return nil, problem.Usagef("give the path of beamctl there with {EnvironmentConfig} (e.g. /usr/local/bin/beamctl)",
					"{Environment} process runs the boot command on the job server's machines").About("Environment")
			}
			self, err := d.Executable()
			if err != nil {
				return nil, fmt.Errorf("finding beamctl's own path for the process environment: %w", err)
			}
			// Runners execute the command as one file with the contract's
			// flags, which beamctl answers as its boot command.
			command = self
		}
		if err := beam.UseProcess(p, command, nil); err != nil {
			return nil, err
		}
	case External:
		if err := beam.UseExternal(p, s.EnvironmentConfig, params); err != nil {
			return nil, err
		}
	case Loopback:
		host := cmp.Or(s.LoopbackAddress, "127.0.0.1")
		if !netaddr.Local(s.Endpoint) && netaddr.LoopbackHost(host) {
			d.Logger.Warn("the job server is on another machine but the worker pool listens on this machine's loopback address: give an address the job server can reach", "endpoint", s.Endpoint, "pool", host)
		}
		pool, err := s.startPool(ctx, d, net.JoinHostPort(strings.Trim(host, "[]"), "0"))
		if err != nil {
			return nil, err
		}
		defer pool.Close()
		failures = pool.Failures()
		if err := beam.UseExternal(p, pool.Address(), nil); err != nil {
			return nil, err
		}
	}

	grpcOpts, err := s.Dial.GRPCOptions()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var staged stagedBytes
	job, err := submit.Submit(ctx, conn, captured, submit.SubmitOptions{
		Endpoint:    s.Endpoint,
		DialOptions: grpcOpts,
		Progress:    staged.observe(obs.Staging),
		Logger:      d.Logger,
		Digests:     d.Digests,
	})
	if obs.StagingDone != nil {
		obs.StagingDone()
	}
	if err != nil {
		return nil, err
	}
	if obs.Submitted != nil {
		obs.Submitted(Submission{Job: job})
	}
	if s.Detach {
		return &Result{Job: job, Outcome: Detached, State: jobpb.JobState_RUNNING, StagedBytes: staged.total(), Image: workerImage}, nil
	}
	res := follow(ctx, conn, job, s.followOptions(d, obs, failures), start, false)
	res.StagedBytes = staged.total()
	res.Image = workerImage
	return res, nil
}

// followOptions follow a launched job: its metrics are part of the Result.
func (s *Spec) followOptions(d Deps, obs Observer, failures <-chan error) FollowOptions {
	return FollowOptions{OnEvent: obs.Job, Failures: failures, Metrics: true, Waits: s.Waits, Logger: d.Logger}
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

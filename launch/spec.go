// Package launch is beamctl's orchestration core: it takes a typed Spec of
// one run (what to build or which build to use, where the job runs, how its
// workers start) through the whole flow — build, capture, environment,
// stage and submit, follow — with its dependencies injected, and returns
// what happened. Commands (run, submit, and those to come) fill a Spec and
// word the Result; they hold no policy of their own.
package launch

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/submit"
	"github.com/beamctl/beamctl/wrap"
)

// Environment is where a job's workers run.
type Environment string

// The environments. Errors name a Spec's settings as {Field}; see problem.
const (
	// Docker: the runner starts a container per worker from an image.
	Docker Environment = "docker"
	// Process: the runner executes a boot command on its own machines.
	Process Environment = "process"
	// External: the runner asks a worker pool at an address.
	External Environment = "external"
	// Loopback: this machine serves the workers, through a pool beamctl
	// runs for the job.
	Loopback Environment = "loopback"
)

// Environments lists every Environment, for help and validation.
var Environments = []Environment{Docker, Process, External, Loopback}

// Spec is one run of a pipeline.
type Spec struct {
	// Build builds the pipeline; the worker runs on its first target. Its
	// OutDir defaults to one of the build cache (Options.CacheOut), not
	// dist. Set exactly one of Build and Dist.
	Build *build.Options
	// Dist is the output directory of an earlier build, used as it is: no
	// Go toolchain is needed.
	Dist string
	// Target picks Dist's worker; the zero value picks its only one.
	Target build.Platform

	// Args are the pipeline's own arguments, for the launcher.
	Args []string
	// JobName overrides the name the pipeline chooses.
	JobName string
	// CaptureTimeout bounds the launcher's construction of the pipeline;
	// 0 is capture.DefaultTimeout.
	CaptureTimeout time.Duration

	// Endpoint is the job server's HOST:PORT; empty runs the job on the
	// embedded runner.
	Endpoint string
	// Dial says how to reach Endpoint (TLS, timeout).
	Dial submit.DialOptions
	// Environment is where workers run; empty: Docker for an Endpoint,
	// Loopback for the embedded runner.
	Environment Environment
	// EnvironmentConfig is the Docker image, the Process command or the
	// External pool's address; empty takes the default where there is one.
	EnvironmentConfig string
	// LoopbackAddress is the host this machine's pool listens on for the
	// Loopback environment; default 127.0.0.1.
	LoopbackAddress string
	// Expose allows a LoopbackAddress beyond loopback, for a job server on
	// another machine: anyone who reaches it can start workers, that is run
	// programs as this user.
	Expose bool
	// Detach returns once the job runs, without following it.
	Detach bool
	// Waits bounds the waits once the job has ended or is to stop.
	Waits Waits
	// Image, if set, is the worker image the job's workers start from:
	// staged first (or, given by digest, checked against the worker), then
	// named by digest in the Docker environment, or expected of the
	// External environment's pool. No worker artifact is staged.
	Image *ImageSpec

	// Dataflow, if set, runs the job on Google Cloud Dataflow through the
	// Beam Go SDK's own runner instead of a Job API server.
	Dataflow *Dataflow

	// Debug, if set, runs the workers on this machine under the Delve
	// debugger, and builds them for it.
	Debug *Debug

	// Dir is the directory the user runs from: workers on this machine run
	// there, so relative paths in Args mean to them what they meant to the
	// launcher. Default: the current directory.
	Dir string
	// LauncherOutput receives the launcher's output; nil discards it (it is
	// still quoted in errors).
	LauncherOutput io.Writer
	// WorkerOutput receives the output of workers on this machine, each line
	// prefixed with the worker's name; nil discards it.
	WorkerOutput io.Writer

	// captureOnly is set by Capture: the worker never runs, so the
	// machine need not be able to run it.
	captureOnly bool
}

// Debug says how a launch runs its programs under Delve.
type Debug struct {
	// Dlv is the dlv executable; empty finds dlv on PATH.
	Dlv string
	// Addr is where debuggers listen: HOST:PORT for consecutive ports from
	// PORT, one per program, or HOST:FIRST-LAST; default DefaultDebugAddr.
	// Beyond loopback only with Expose.
	Addr string
	// Wait starts each worker stopped until a debugger client continues it.
	Wait bool
	// Launcher also runs the launcher under Delve, stopped until a client
	// continues it, so that breakpoints in main and in the construction of
	// the pipeline hit. It has no time limit then, and is stopped once it
	// has submitted its pipeline.
	Launcher bool
}

// DefaultDebugAddr is where the first debugger listens: Delve's own
// default port.
const DefaultDebugAddr = "127.0.0.1:2345"

func (d *Debug) addr() string {
	if d.Addr == "" {
		return DefaultDebugAddr
	}
	return d.Addr
}

// environment is the Environment the spec runs with.
func (s *Spec) environment() Environment {
	if s.Environment != "" {
		return s.Environment
	}
	if s.Endpoint != "" || s.Dataflow != nil {
		return Docker
	}
	return Loopback
}

// LocalWorkers reports whether the spec's workers run on this machine, which
// must then be able to execute the worker's platform.
func (s *Spec) LocalWorkers() bool { return s.environment() == Loopback }

// Validate checks the spec without touching anything.
func (s *Spec) Validate() error {
	switch {
	case (s.Build == nil) == (s.Dist == ""):
		return problem.Usagef("set exactly one of them", "a launch needs either {Build} or {Dist}")
	case s.CaptureTimeout < 0:
		return problem.Usagef(fmt.Sprintf("give a duration such as 2m (0 takes the default, %v)", capture.DefaultTimeout),
			"{CaptureTimeout} %v is negative", s.CaptureTimeout).About("CaptureTimeout")
	}
	if err := s.Dial.Validate(); err != nil {
		return err
	}
	if s.Dataflow != nil {
		return s.validateDataflow()
	}
	if err := capture.CheckArgs(s.Args); err != nil {
		return err
	}
	if s.Endpoint != "" {
		if _, _, err := submit.ParseEndpoint(s.Endpoint); err != nil {
			return &problem.Error{Reason: err.Error(), Usage: true, Err: err}
		}
	}
	env := s.environment()
	known := false
	for _, e := range Environments {
		known = known || env == e
	}
	switch {
	case !known:
		return problem.Usagef("", "{Environment} %q is not one of docker, process, external, loopback", env).About("Environment")
	case s.Endpoint == "" && env != Loopback:
		return problem.Usagef("give {Endpoint} HOST:PORT (the embedded runner runs workers on this machine)", "{Environment} %s needs a job server", env).About("Environment")
	case env == External && s.EnvironmentConfig == "":
		return problem.Usagef("give {EnvironmentConfig} HOST:PORT", "{Environment} external needs the worker pool address").About("Environment")
	case s.Endpoint == "" && s.Detach:
		return problem.Usagef("the embedded runner stops when beamctl exits; give a job server, or run the job in the foreground", "{Detach} needs {Endpoint}").About("Detach")
	case env == Loopback && s.EnvironmentConfig != "":
		return problem.Usagef("use {LoopbackAddress} for the pool's address", "{EnvironmentConfig} has no meaning for {Environment} loopback").About("EnvironmentConfig")
	case s.Image != nil && s.Endpoint == "":
		return problem.Usagef("give {Endpoint} HOST:PORT of a job server that starts images, or drop {Image} to run the worker here", "{Image} needs a job server: the embedded runner runs the worker binary on this machine").About("Image")
	case s.Image != nil && env == Loopback:
		return problem.Usagef("use {Environment} docker (the runner starts the image), external (a pool runs the image) or process (a command runs the image's boot)", "{Image} has no meaning for {Environment} loopback").About("Image")
	case s.Image != nil && s.Image.Ref == "":
		return problem.Usagef("give REPO[:TAG] or REPO@sha256:...", "{Image} is empty").About("Image")
	case s.Image != nil && env == Docker && s.EnvironmentConfig != "":
		return problem.Usagef("drop one of them", "{Image} and {EnvironmentConfig} both name the docker image").About("Image")
	case s.Debug != nil && env != Loopback:
		return problem.Usagef("run the job on the embedded runner, or with {Environment} loopback", "{Debug} runs the workers on this machine under Delve, but {Environment} %s runs them elsewhere", env).About("Debug")
	case env == Loopback && s.LoopbackAddress != "" && !s.Expose && !netaddr.LoopbackHost(s.LoopbackAddress):
		return problem.Usagef("give a loopback address, or set {Expose} to let the job server's machine (and anyone who can reach the address) start workers as this user",
			"{LoopbackAddress} %q is not a loopback address", s.LoopbackAddress).About("LoopbackAddress")
	}
	if s.Debug != nil {
		if _, err := wrap.ParsePorts(s.Debug.addr(), s.Expose); err != nil {
			return err
		}
	}
	return nil
}

// defaultDir makes the current directory the spec's Dir when it has none.
func (s *Spec) defaultDir() error {
	if s.Dir != "" {
		return nil
	}
	wd, err := os.Getwd()
	s.Dir = wd
	return err
}

// captureTimeout is the bound the launcher runs under.
func (s *Spec) captureTimeout() time.Duration {
	if s.CaptureTimeout == 0 {
		return capture.DefaultTimeout
	}
	return s.CaptureTimeout
}

// DefaultImage is the worker image for the Docker environment when none is
// given: Beam's Go SDK image of the pipeline's Beam version.
func DefaultImage(beamVersion string) (string, error) {
	if beamVersion == "" {
		return "", problem.Usagef("give the worker image with {EnvironmentConfig}", "the pipeline's Beam SDK version is unknown (replaced by a local directory)")
	}
	v := beamVersion
	if len(v) > 0 && v[0] == 'v' {
		v = v[1:]
	}
	return fmt.Sprintf("apache/beam_go_sdk:%s", v), nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/submit"
)

// Environments a job's workers can run in.
const (
	envDocker   = "docker"
	envProcess  = "process"
	envExternal = "external"
	envLoopback = "loopback"
)

// addLaunchFlags registers the flags shared by run and submit.
func addLaunchFlags(f *pflag.FlagSet) {
	f.String("endpoint", "", "Beam job server HOST:PORT (default: the embedded runner)")
	f.Duration("connect-timeout", submit.DefaultConnectTimeout, "how long to wait for the job server to answer")
	f.Bool("tls", false, "connect to the job server with TLS")
	f.String("tls-ca", "", "PEM file of certificate authorities to trust for --tls (implies --tls)")
	f.String("tls-server-name", "", "name the job server's certificate must carry (implies --tls)")
	f.String("environment", "", "where workers run: docker, process, external or loopback (default: docker for --endpoint, loopback for the embedded runner)")
	f.String("environment-config", "", "docker: the image; process: the boot command on the job server's machines; external: the worker pool HOST:PORT")
	f.String("loopback-address", "127.0.0.1", "address of this machine's worker pool that the job server can reach, for --environment loopback")
	f.String("job-name", "", "job name (default: the one the pipeline chooses)")
	f.Duration("capture-timeout", submit.DefaultCaptureTimeout, "how long the launcher may take to construct the pipeline")
	f.Bool("detach", false, "print the job id once the job runs, and return")
}

// spec is what a launch needs: where to submit, how workers run, and
// the binaries and arguments.
type spec struct {
	endpoint    string
	environment string
	envConfig   string
	target      build.Platform

	launcher, worker string
	beamVersion      string
	args             []string
}

// localWorkers reports whether the workers run on this machine, so it
// must be able to execute the target.
func (s *spec) localWorkers() bool { return s.environment == envLoopback }

// launchSpec reads and checks the launch settings.
func (a *app) launchSpec(target build.Platform) (*spec, error) {
	s := &spec{
		endpoint:    a.v.GetString("endpoint"),
		environment: a.v.GetString("environment"),
		envConfig:   a.v.GetString("environment-config"),
		target:      target,
	}
	if t := a.v.GetDuration("capture-timeout"); t <= 0 {
		return nil, usagef("--capture-timeout %v is not positive: give a duration such as 2m", t)
	}
	if t := a.v.GetDuration("connect-timeout"); t <= 0 {
		return nil, usagef("--connect-timeout %v is not positive: give a duration such as 30s", t)
	}
	if s.endpoint != "" {
		if _, _, err := submit.ParseEndpoint(s.endpoint); err != nil {
			return nil, &usageError{err.Error()}
		}
	}
	switch s.environment {
	case "":
		s.environment = envLoopback
		if s.endpoint != "" {
			s.environment = envDocker
		}
	case envDocker, envProcess, envExternal, envLoopback:
	default:
		return nil, usagef("--environment %q is not one of docker, process, external, loopback", s.environment)
	}
	if s.endpoint == "" && s.environment != envLoopback {
		return nil, usagef("--environment %s needs a job server: give --endpoint HOST:PORT (the embedded runner runs workers on this machine)", s.environment)
	}
	if s.environment == envExternal && s.envConfig == "" {
		return nil, usagef("--environment external needs the worker pool address: give --environment-config HOST:PORT")
	}
	if s.endpoint == "" && a.v.GetBool("detach") {
		return nil, usagef("--detach needs --endpoint: the embedded runner stops when beamctl exits")
	}
	if s.environment == envLoopback && s.envConfig != "" {
		return nil, usagef("--environment-config has no meaning for --environment loopback: use --loopback-address for the pool's address")
	}
	return s, nil
}

// launch captures the pipeline from the launcher, submits it with its
// workers set up as the spec says, and follows the job.
func (a *app) launch(ctx context.Context, s *spec) error {
	// prism logs through slog.Default; its chatter belongs under --verbose.
	defer slog.SetDefault(slog.Default())
	if a.v.GetBool("verbose") {
		slog.SetDefault(a.log.With("component", "prism"))
	} else {
		slog.SetDefault(slog.New(slog.DiscardHandler))
	}
	// Reach the job server before running the launcher: a wrong endpoint
	// is the likelier mistake, and the cheaper one to report.
	var conn *grpc.ClientConn
	var dopts submit.DialOptions
	if s.endpoint != "" {
		var err error
		if conn, dopts, err = a.dial(ctx, s.endpoint); err != nil {
			return err
		}
		defer conn.Close()
	}
	var launcherOut io.Writer
	if a.v.GetBool("verbose") {
		launcherOut = a.stderr
	}
	captured, err := submit.Capture(ctx, submit.CaptureOptions{
		Launcher:   s.launcher,
		WorkerPath: s.worker,
		Args:       s.args,
		JobName:    a.v.GetString("job-name"),
		Timeout:    a.v.GetDuration("capture-timeout"),
		Stdout:     launcherOut,
		Stderr:     launcherOut,
		Logger:     a.log,
	})
	if err != nil {
		return err
	}
	if conn == nil {
		return a.launchEmbedded(ctx, captured)
	}
	return a.launchRemote(ctx, s, conn, dopts, captured)
}

// startPool starts this machine's worker pool. Workers run where the user
// is, so relative paths in pipeline arguments mean to them what they
// meant to the launcher.
func (a *app) startPool(ctx context.Context, address string) (*loopback.Pool, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	pool, err := loopback.Start(ctx, loopback.Options{Address: address, Logger: a.log, Output: a.stderr, Dir: wd})
	if err != nil {
		return nil, fmt.Errorf("starting the worker pool: %w", err)
	}
	return pool, nil
}

func (a *app) launchEmbedded(ctx context.Context, captured *submit.Captured) error {
	// The pool outlives the runner: prism brings the whole process down if
	// it cannot reach the pool for a worker it still wants to start.
	pool, err := a.startPool(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pool.Close()
	runner, err := embeddedrunner.Start(ctx, embeddedrunner.Options{Logger: a.log})
	if err != nil {
		return fmt.Errorf("starting the embedded runner: %w", err)
	}
	defer runner.Close()
	params := loopback.LocalWorkerParams(captured.Worker.Path, captured.Worker.SHA256)
	if err := submit.UseLocalWorkerPool(captured.Pipeline, pool.Address(), params); err != nil {
		return err
	}
	start := time.Now()
	job, err := submit.Submit(ctx, runner.Conn(), captured, submit.SubmitOptions{Logger: a.log})
	if err != nil {
		return err
	}
	a.log.Debug("submitted", "job", job.ID, "name", job.Name, "endpoint", runner.Endpoint())
	if !a.json {
		fmt.Fprintf(a.stderr, "job %s (%s) submitted to the embedded runner\n", job.ID, job.Name)
	}
	return a.follow(ctx, runner.Conn(), job, pool.Failures(), start)
}

func (a *app) dialOptions() submit.DialOptions {
	return submit.DialOptions{
		TLS:            a.v.GetBool("tls"),
		CAFile:         a.v.GetString("tls-ca"),
		ServerName:     a.v.GetString("tls-server-name"),
		ConnectTimeout: a.v.GetDuration("connect-timeout"),
		Logger:         a.log,
	}
}

// dial connects to --endpoint, warning when the job and its artifacts
// would cross a network in plaintext.
func (a *app) dial(ctx context.Context, endpoint string) (*grpc.ClientConn, submit.DialOptions, error) {
	o := a.dialOptions()
	if endpoint == "" {
		return nil, o, usagef("no job server: give --endpoint HOST:PORT (or BEAMCTL_ENDPOINT)")
	}
	if !o.TLS && o.CAFile == "" && o.ServerName == "" && !submit.IsLoopback(endpoint) {
		a.log.Warn("connecting to the job server without TLS: the pipeline and worker binary cross the network in plaintext; use --tls if the job server supports it", "endpoint", endpoint)
	}
	conn, err := submit.Dial(ctx, endpoint, o)
	if err != nil {
		return nil, o, dialError(err)
	}
	return conn, o, nil
}

// dialError gives connection problems that the user must fix in the
// command line the usage exit code; an unreachable server may be a
// passing fault, so it stays a failure.
func dialError(err error) error {
	switch {
	case errors.Is(err, submit.ErrInvalidEndpoint), errors.Is(err, submit.ErrNotJobServer),
		errors.Is(err, submit.ErrTLSMismatch), errors.Is(err, submit.ErrTLSConfig):
		return &usageError{err.Error()}
	}
	return err
}

func (a *app) launchRemote(ctx context.Context, s *spec, conn *grpc.ClientConn, dopts submit.DialOptions, captured *submit.Captured) error {
	var failures <-chan error
	var err error
	switch s.environment {
	case envDocker:
		image := s.envConfig
		if image == "" {
			if s.beamVersion == "" {
				return usagef("the pipeline's Beam SDK version is unknown (replaced by a local directory): give the worker image with --environment-config IMAGE")
			}
			image = "apache/beam_go_sdk:" + strings.TrimPrefix(s.beamVersion, "v")
		}
		err = submit.UseDockerEnvironment(captured.Pipeline, image)
	case envProcess:
		command := s.envConfig
		if command == "" {
			if !submit.IsLoopback(s.endpoint) {
				return usagef("--environment process runs the boot command on the job server's machines: give the path of beamctl there with --environment-config (e.g. /usr/local/bin/beamctl)")
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding beamctl's own path for the process environment: %w", err)
			}
			// Runners execute the command as one file with the contract's
			// flags, which beamctl answers as beamctl boot.
			command = self
		}
		err = submit.UseProcessEnvironment(captured.Pipeline, command, nil)
	case envExternal:
		err = submit.UseExternalEnvironment(captured.Pipeline, s.envConfig)
	case envLoopback:
		if !submit.IsLoopback(s.endpoint) && isLoopbackHost(a.v.GetString("loopback-address")) {
			a.log.Warn("the job server is on another machine but the worker pool listens on this machine's loopback address; set --loopback-address to an address the job server can reach", "endpoint", s.endpoint)
		}
		pool, perr := a.startPool(ctx, a.v.GetString("loopback-address")+":0")
		if perr != nil {
			return perr
		}
		defer pool.Close()
		failures = pool.Failures()
		err = submit.UseExternalEnvironment(captured.Pipeline, pool.Address())
	}
	if err != nil {
		return err
	}

	grpcOpts, err := dopts.GRPCOptions()
	if err != nil {
		return dialError(err)
	}
	progress, stopProgress := a.stagingProgress()
	start := time.Now()
	job, err := submit.Submit(ctx, conn, captured, submit.SubmitOptions{
		Endpoint:    s.endpoint,
		DialOptions: grpcOpts,
		Progress:    progress,
		Logger:      a.log,
	})
	stopProgress()
	if err != nil {
		return err
	}
	a.log.Debug("submitted", "job", job.ID, "name", job.Name, "endpoint", s.endpoint)
	if a.v.GetBool("detach") {
		if a.json {
			return a.printJSONLine(map[string]string{"jobId": job.ID, "name": job.Name, "endpoint": s.endpoint, "state": "RUNNING"})
		}
		fmt.Fprintln(a.stdout, job.ID)
		return nil
	}
	if !a.json {
		fmt.Fprintf(a.stderr, "job %s (%s) submitted to %s\n", job.ID, job.Name, s.endpoint)
	}
	return a.follow(ctx, conn, job, failures, start)
}

func isLoopbackHost(h string) bool {
	return h == "" || h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" || h == "[::1]"
}

// stagingProgress shows a progress bar per staged file on a terminal.
func (a *app) stagingProgress() (func(stage.Progress), func()) {
	if !a.stderrIsTerminal() || a.json {
		return func(p stage.Progress) {
			if p.Sent == p.Size {
				a.log.Info("staged", "file", p.Path, "bytes", p.Size)
			}
		}, func() {}
	}
	pr := mpb.New(mpb.WithOutput(a.stderr), mpb.WithRefreshRate(150*time.Millisecond))
	var mu sync.Mutex
	bars := map[string]*mpb.Bar{}
	return func(p stage.Progress) {
			mu.Lock()
			defer mu.Unlock()
			b := bars[p.Path]
			if b == nil {
				b = pr.AddBar(p.Size,
					mpb.PrependDecorators(decor.Name("staging "+shortPath(p.Path)+" ")),
					mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name("  "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
				bars[p.Path] = b
			}
			b.SetCurrent(p.Sent)
		}, func() {
			mu.Lock()
			defer mu.Unlock()
			for _, b := range bars {
				if !b.Completed() {
					b.Abort(false)
				}
			}
			pr.Wait()
		}
}

func shortPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Package bootcmd is the boot command of beamctl and of beamctl-boot, the
// image entrypoint: the same flags, help and behaviour in both, over the boot
// package and its worker wrappers (package wrap). It does not depend on a
// command-line library: beamctl-boot is also built inside a pipeline's own
// module graph (for worker images), which need not contain one.
package bootcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/wrap"
)

// Long is the boot command's help.
const Long = `Start one pipeline worker as Beam's container contract says: the command
a runner executes for a worker, in a PROCESS environment or as a worker
image's entrypoint. You do not normally run it yourself.

boot asks the runner's provision service for the pipeline options and
artifacts, retrieves the artifacts into <semi_persist_dir>/staged (each
checked against its sha256), and runs the Go worker binary with the flags
and environment the Beam Go SDK expects, under qemu-user if it is built for
another architecture. SIGINT and SIGTERM are passed on to the worker, and
boot exits with the worker's exit code (128+N when signal N ended it).

Runners that execute a single file cannot pass the word "boot": beamctl
started with the contract's flags and no command (as prism's PROCESS
environment does: give the path of beamctl as the command), or under the
name "boot" or "beamctl-boot", acts as beamctl boot. beamctl-boot, a small
binary for worker images, is this command alone.

With --worker_pool, boot serves Beam's external worker pool service instead
(default address 127.0.0.1:50000: a runner in the same pod or on the same
machine reaches it there) and starts one boot per worker the runner asks
for. It runs whatever worker binary a job stages, so it serves only
processes of its own user (and root) on this machine: --allow-other-users
lets a runner of another user in (a sidecar whose runner runs as another
uid), --expose lets it listen beyond loopback, for anyone who can reach it.
With --debug, each worker runs under Delve (dlv on PATH, or --dlv) on the
next free port of --debug-addr, for a debugger reached by port-forward.
Delve accepts only clients of the worker's own user unless
--allow-other-users: a port-forward into a container arrives as another
user than the image's.

Exit codes: the worker's; 1 when the worker cannot be started; 2 for
missing flags or an unusable --address.`

// contractFlags are the container contract's flags, as runners pass them.
var contractFlags = []string{"id", "provision_endpoint", "logging_endpoint", "artifact_endpoint", "control_endpoint", "semi_persist_dir", "worker_pool"}

// Short is the boot command's one-line summary.
const Short = "Start a pipeline worker as Beam's container contract says (a runner's entrypoint)"

// Example is the boot command's usage example.
const Example = `  beamctl boot --id=worker-1 --provision_endpoint=localhost:8098
  beamctl boot --worker_pool --address=:50000`

// Config is how the command fits its program.
type Config struct {
	// Self is the argv prefix that runs this command again, for the pool's
	// per-worker boots; os.Executable is put before it.
	Self []string
	// Stdout and Stderr receive the worker's output and the command's
	// messages.
	Stdout, Stderr io.Writer
	// Verbose is whether debug logging was asked for, to pass it on to
	// per-worker boots.
	Verbose bool
}

// ExitError ends the program with Code; the worker already said why.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("worker exited with code %d", e.Code) }

// UsageError is wrong usage: exit 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Invalid marks the error as a problem with the user's input.
func (e *UsageError) Invalid() bool { return true }

func usagef(format string, a ...any) error { return &UsageError{fmt.Sprintf(format, a...)} }

// FlagSet is what both programs' flag libraries offer to define flags.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	Int64Var(p *int64, name string, value int64, usage string)
}

// Flags are the boot command's flag values.
type Flags struct {
	contract       boot.Contract
	semiPersistDir string
	workerPool     bool
	address        string
	workerSHA256   string
	pool           PoolFlags
}

// PoolFlags are who a worker pool serves, and what it runs.
type PoolFlags struct {
	AllowOtherUsers  bool
	Expose           bool
	AllowUnverified  bool
	MaxArtifactBytes int64
	Debug            DebugFlags
}

// DebugFlags run workers under Delve.
type DebugFlags struct {
	Debug bool
	Addr  string
	Dlv   string
	Wait  bool
}

// DefaultDebugAddrs are the ports a pool's debuggers listen on: one worker
// each, on loopback, where a port-forward (kubectl port-forward, ssh -L)
// reaches them.
const DefaultDebugAddrs = "127.0.0.1:2345-2364"

// AddDebugFlags registers them.
func AddDebugFlags(f FlagSet, d *DebugFlags, addr string) {
	f.BoolVar(&d.Debug, "debug", false, "run each worker under Delve's headless server, for a debugger to attach to (see --debug-addr)")
	f.StringVar(&d.Addr, "debug-addr", addr, "with --debug: where the workers' debuggers listen, HOST:FIRST-LAST (one port per worker) or HOST:PORT; beyond loopback only with --expose")
	f.StringVar(&d.Dlv, "dlv", "", "with --debug: the Delve executable (default: dlv on PATH)")
	f.BoolVar(&d.Wait, "debug-wait", true, "with --debug: start each worker stopped until a debugger continues it")
}

// wrapper is the Delve wrapper the flags ask for, nil without --debug.
func (d DebugFlags) wrapper(expose, anyUser bool, log *slog.Logger) (*wrap.Debug, error) {
	if !d.Debug {
		return nil, nil
	}
	dlv, err := wrap.FindDelve(d.Dlv)
	if err != nil {
		return nil, err
	}
	ports, err := wrap.ParsePorts(d.Addr, expose)
	if err != nil {
		return nil, err
	}
	return &wrap.Debug{Delve: dlv, Ports: ports, Wait: d.Wait, AnyUser: anyUser, OnListen: func(t wrap.DebugTarget) {
		log.Info("worker runs under Delve: attach with dlv connect "+t.Address, "id", t.ID, "address", t.Address, "waits", t.Wait)
	}}, nil
}

// bootArgs gives each worker's boot its own debugger address, from the
// pool's range.
func (d DebugFlags) bootArgs(w *wrap.Debug, expose, anyUser bool) func(boot.Contract) ([]string, func(), error) {
	return func(boot.Contract) ([]string, func(), error) {
		addr, release, err := w.Ports.Take()
		if err != nil {
			return nil, nil, err
		}
		args := []string{"--debug", "--debug-addr=" + addr, "--dlv=" + w.Delve, fmt.Sprintf("--debug-wait=%t", d.Wait)}
		if expose {
			args = append(args, "--expose")
		}
		if anyUser {
			args = append(args, "--allow-other-users")
		}
		return args, release, nil
	}
}

// Fields are the flags that fill the pool's and Delve's options, by the
// option fields that library errors name ({Address}, see internal/problem).
var Fields = map[string]string{
	"Address":          "address",
	"Expose":           "expose",
	"AllowUnverified":  "allow-unverified-worker",
	"MaxArtifactBytes": "max-artifact-bytes",
	"Debug":            "debug",
	"DebugAddr":        "debug-addr",
	"Dlv":              "dlv",
}

// Flag words an option field as the flag that fills it.
func Flag(field string) string {
	if f, ok := Fields[field]; ok {
		return "--" + f
	}
	return field
}

// Message is err's message with the settings it names worded as flags.
func Message(err error) string { return problem.Render(err, Flag) }

// AddPoolFlags registers them, with the digest check's opt-out.
func AddPoolFlags(f FlagSet, p *PoolFlags) {
	f.BoolVar(&p.AllowOtherUsers, "allow-other-users", false, "start workers for processes of any user of this machine, not only this one's and root's (see SECURITY)")
	f.BoolVar(&p.Expose, "expose", false, "allow an --address beyond loopback: anyone who can reach it can run programs as this user (see SECURITY)")
	f.BoolVar(&p.AllowUnverified, "allow-unverified-worker", false, "run a worker binary that declares no sha256 (with a warning); by default it is refused")
	f.Int64Var(&p.MaxArtifactBytes, "max-artifact-bytes", 0, "most bytes of artifacts to retrieve for one worker (0: no limit)")
	AddDebugFlags(f, &p.Debug, DefaultDebugAddrs)
}

// Check rejects values that cannot be meant.
func (p PoolFlags) Check() error {
	if p.MaxArtifactBytes < 0 {
		return usagef("--max-artifact-bytes %d is negative: give the most bytes, or 0 for no limit", p.MaxArtifactBytes)
	}
	return nil
}

// Apply sets them on pool options: a pool that performs the contract
// itself runs its workers under Delve, one whose workers boot in processes
// of their own gives each its debugger's address.
func (p PoolFlags) Apply(o *boot.PoolOptions, log *slog.Logger) error {
	o.AllowOtherUsers, o.Expose, o.AllowUnverified = p.AllowOtherUsers, p.Expose, p.AllowUnverified
	o.MaxArtifactBytes = p.MaxArtifactBytes
	w, err := p.Debug.wrapper(p.Expose, p.AllowOtherUsers, log)
	if err != nil || w == nil {
		return err
	}
	if len(o.BootCommand) > 0 {
		o.BootArgs = p.Debug.bootArgs(w, p.Expose, p.AllowOtherUsers)
	} else {
		o.Wrapper = w
	}
	return nil
}

// Register defines the boot command's flags on fs, to be parsed into f.
func Register(fl FlagSet, f *Flags) {
	fl.StringVar(&f.contract.ID, "id", "", "the worker's id, as the runner knows it")
	fl.StringVar(&f.contract.ProvisionEndpoint, "provision_endpoint", "", "the runner's provision service HOST:PORT")
	fl.StringVar(&f.contract.LoggingEndpoint, "logging_endpoint", "", "the runner's logging service (provision info overrides it)")
	fl.StringVar(&f.contract.ArtifactEndpoint, "artifact_endpoint", "", "the runner's artifact retrieval service (provision info overrides it)")
	fl.StringVar(&f.contract.ControlEndpoint, "control_endpoint", "", "the runner's control service (provision info overrides it)")
	fl.StringVar(&f.semiPersistDir, "semi_persist_dir", "", "the worker's semi-persistent directory (default: a temporary directory, removed when the worker exits)")
	fl.BoolVar(&f.workerPool, "worker_pool", false, "serve the external worker pool service instead of starting a worker")
	fl.StringVar(&f.address, "address", "127.0.0.1:50000", "with --worker_pool: HOST:PORT to serve on; beyond loopback only with --expose")
	fl.StringVar(&f.workerSHA256, "worker-sha256", "", "the sha256 the job's worker binary must have (a worker pool passes the job's); an image's worker that differs is refused")
	AddPoolFlags(fl, &f.pool)
}

// Run runs the boot command with parsed flags; changed reports whether a
// flag was given on the command line.
func (c Config) Run(ctx context.Context, f Flags, changed func(name string) bool, log *slog.Logger) error {
	if err := f.pool.Check(); err != nil {
		return err
	}
	f.contract.Unquote()
	f.semiPersistDir = boot.Unquote(f.semiPersistDir)
	f.address = boot.Unquote(f.address)
	if f.workerSHA256 != "" {
		if !digest.Valid(f.workerSHA256) {
			return usagef("--worker-sha256 %q is not a sha256: give 64 lower-case hex digits", f.workerSHA256)
		}
		f.contract.Params = map[string]string{boot.ParamWorkerSHA256: f.workerSHA256}
	}
	if f.workerPool {
		return c.pool(ctx, f, log)
	}
	for _, name := range []string{"address", "allow-other-users", "expose"} {
		// A pool passes --expose and --allow-other-users on to the boots of
		// its debugged workers, for their debuggers.
		if changed(name) && (name == "address" || !f.pool.Debug.Debug) {
			return usagef("--%s is the worker pool's: use it with --worker_pool", name)
		}
	}
	return c.boot(ctx, f, log)
}

func (c Config) boot(ctx context.Context, f Flags, log *slog.Logger) error {
	switch {
	case f.contract.ID == "":
		return usagef("boot needs --id: it is run by a runner, which passes the worker's id and endpoints")
	case f.contract.ProvisionEndpoint == "":
		return usagef("boot needs --provision_endpoint: it is run by a runner, which passes the worker's id and endpoints")
	}
	// Signals go to the worker, which decides how to end; boot ends with it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	baked, err := boot.BakedFromEnv(os.Environ())
	if err != nil {
		return err
	}
	var wrapper wrap.Wrapper
	if w, err := f.pool.Debug.wrapper(f.pool.Expose, f.pool.AllowOtherUsers, log); err != nil {
		return err
	} else if w != nil {
		wrapper = w
	}
	code, err := boot.Boot(context.WithoutCancel(ctx), boot.BootOptions{
		Wrapper:        wrapper,
		Contract:       f.contract,
		Baked:          baked,
		SemiPersistDir: f.semiPersistDir,
		Logger:         log,
		Stdout:         c.Stdout,
		Stderr:         c.Stderr,
		Signals:        sigs,

		AllowUnverified:  f.pool.AllowUnverified,
		MaxArtifactBytes: f.pool.MaxArtifactBytes,
	})
	if err != nil {
		return fmt.Errorf("boot worker %s: %w", f.contract.ID, err)
	}
	log.Debug("worker exited", "id", f.contract.ID, "code", code)
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// pool serves the worker pool of a worker container: each worker is booted
// by a boot process of its own.
func (c Config) pool(ctx context.Context, f Flags, log *slog.Logger) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the program's own path to boot workers: %w", err)
	}
	command := append([]string{self}, c.Self...)
	if c.Verbose {
		command = append(command, "--verbose")
	}
	if f.pool.AllowUnverified {
		command = append(command, "--allow-unverified-worker")
	}
	if f.pool.MaxArtifactBytes > 0 {
		command = append(command, fmt.Sprintf("--max-artifact-bytes=%d", f.pool.MaxArtifactBytes))
	}
	o := boot.PoolOptions{
		Address:      f.address,
		BootCommand:  command,
		AnswerErrors: true,
		LabelByID:    true,
	}
	if err := f.pool.Apply(&o, log); err != nil {
		return err
	}
	return Serve(ctx, o, log, c.Stderr)
}

// Serve serves a standalone worker pool until ctx ends, then stops every
// worker.
func Serve(ctx context.Context, o boot.PoolOptions, log *slog.Logger, stderr io.Writer) error {
	o.Logger, o.Output = log, stderr
	pool, err := boot.StartPool(ctx, o)
	if err != nil {
		var op *net.OpError
		if p, ok := problem.As(err); ok && p.Usage {
			return usagef("%s", Message(err))
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE) && errors.As(err, &op):
			return usagef("worker pool address %s is in use: %v; choose another with --address", o.Address, op.Err)
		case errors.As(err, &op):
			return usagef("worker pool cannot listen on %s: %v; choose another with --address", o.Address, op.Err)
		}
		return err
	}
	defer pool.Close()
	if host, _, err := net.SplitHostPort(pool.Address()); err == nil && !netaddr.LoopbackHost(host) {
		log.Warn("--expose: anyone who can reach this address can run programs on this machine as this user; make sure only the job server can", "address", pool.Address())
	}
	if o.AllowOtherUsers {
		log.Warn("--allow-other-users: every user of this machine can run programs as this user through the worker pool", "uid", os.Getuid())
	}
	fmt.Fprintf(stderr, "worker pool listening on %s\n", pool.Address())
	for {
		select {
		case err := <-pool.Failures():
			log.Error("worker failed", "error", err)
		case <-ctx.Done():
			log.Info("stopping the worker pool and its workers")
			return pool.Close()
		}
	}
}

// Args recognises a program started as a boot command by a runner that
// executes a single file: under the name "boot" (where Beam's SDK images
// keep their entrypoint) or "beamctl-boot", or with the contract's flags
// and no command, as prism's PROCESS environment does. It returns the
// arguments after the program name that make it the boot command, with
// "boot" first, or nil.
func Args(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	switch strings.TrimSuffix(filepath.Base(argv[0]), ".exe") {
	case "boot", "beamctl-boot":
		return append([]string{"boot"}, argv[1:]...)
	}
	if len(argv) > 1 && strings.HasPrefix(argv[1], "--") {
		name, _, _ := strings.Cut(argv[1][2:], "=")
		for _, c := range contractFlags {
			if name == c {
				return append([]string{"boot"}, argv[1:]...)
			}
		}
	}
	return nil
}

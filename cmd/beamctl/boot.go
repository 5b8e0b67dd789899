package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/loopback"
)

const bootLong = `Start one pipeline worker as Beam's container contract says: the command
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
name "boot", acts as beamctl boot.

With --worker_pool, boot serves Beam's external worker pool service instead
(default address :50000, all interfaces, as in a worker container) and
starts one 'beamctl boot' per worker the runner asks for. It runs whatever
worker binary a job stages: only the job server may be able to reach it.

Exit codes: the worker's; 1 when the worker cannot be started; 2 for
missing flags or an unusable --address.`

// contractFlags are the container contract's flags, as runners pass them.
var contractFlags = []string{"id", "provision_endpoint", "logging_endpoint", "artifact_endpoint", "control_endpoint", "semi_persist_dir", "worker_pool"}

// bootFlags are boot's settings.
type bootFlags struct {
	loopback.Contract
	semiPersistDir string
	workerPool     bool
	address        string
}

func newBootCmd(a *app) *cobra.Command {
	var f bootFlags
	cmd := &cobra.Command{
		Use:   "boot --id ID --provision_endpoint HOST:PORT [flags]",
		Short: "Start a pipeline worker as Beam's container contract says (a runner's entrypoint)",
		Long:  bootLong,
		Example: `  beamctl boot --id=worker-1 --provision_endpoint=localhost:8098
  beamctl boot --worker_pool --address=:50000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			f.unquote()
			if f.workerPool {
				return a.bootPool(cmd.Context(), f)
			}
			if cmd.Flags().Changed("address") {
				return usagef("--address is the worker pool's: use it with --worker_pool")
			}
			return a.boot(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ID, "id", "", "the worker's id, as the runner knows it")
	fl.StringVar(&f.ProvisionEndpoint, "provision_endpoint", "", "the runner's provision service HOST:PORT")
	fl.StringVar(&f.LoggingEndpoint, "logging_endpoint", "", "the runner's logging service (provision info overrides it)")
	fl.StringVar(&f.ArtifactEndpoint, "artifact_endpoint", "", "the runner's artifact retrieval service (provision info overrides it)")
	fl.StringVar(&f.ControlEndpoint, "control_endpoint", "", "the runner's control service (provision info overrides it)")
	fl.StringVar(&f.semiPersistDir, "semi_persist_dir", "", "the worker's semi-persistent directory (default: a temporary directory, removed when the worker exits)")
	fl.BoolVar(&f.workerPool, "worker_pool", false, "serve the external worker pool service instead of starting a worker")
	fl.StringVar(&f.address, "address", ":50000", "with --worker_pool: HOST:PORT to serve on")
	return cmd
}

// unquote strips one pair of quotes around each value: prism's PROCESS
// environment passes --id='ID' without a shell to remove them.
func (f *bootFlags) unquote() {
	for _, p := range []*string{&f.ID, &f.ProvisionEndpoint, &f.LoggingEndpoint, &f.ArtifactEndpoint, &f.ControlEndpoint, &f.semiPersistDir, &f.address} {
		*p = unquote(*p)
	}
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

func (a *app) boot(ctx context.Context, f bootFlags) error {
	switch {
	case f.ID == "":
		return usagef("boot needs --id: it is run by a runner, which passes the worker's id and endpoints")
	case f.ProvisionEndpoint == "":
		return usagef("boot needs --provision_endpoint: it is run by a runner, which passes the worker's id and endpoints")
	}
	// Signals go to the worker, which decides how to end; boot ends with it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	code, err := loopback.Boot(context.WithoutCancel(ctx), loopback.BootOptions{
		Contract:       f.Contract,
		SemiPersistDir: f.semiPersistDir,
		Logger:         a.log,
		Stdout:         a.stdout,
		Stderr:         a.stderr,
		Signals:        sigs,
	})
	if err != nil {
		return fmt.Errorf("boot worker %s: %w", f.ID, err)
	}
	a.log.Debug("worker exited", "id", f.ID, "code", code)
	a.exitCode = code
	return nil
}

// bootPool serves the worker pool of a worker container: each worker is
// booted by a beamctl boot process of its own.
func (a *app) bootPool(ctx context.Context, f bootFlags) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding beamctl's own path to boot workers: %w", err)
	}
	command := []string{self, "boot"}
	if a.v.GetBool("verbose") {
		command = append(command, "--verbose")
	}
	return a.servePool(ctx, loopback.Options{
		Address:      f.address,
		BootCommand:  command,
		AnswerErrors: true,
		LabelByID:    true,
	})
}

// servePool serves a standalone worker pool until interrupted, then stops
// every worker.
func (a *app) servePool(ctx context.Context, o loopback.Options) error {
	o.Logger, o.Output = a.log, a.stderr
	pool, err := loopback.Start(ctx, o)
	if err != nil {
		var op *net.OpError
		switch {
		case errors.Is(err, syscall.EADDRINUSE) && errors.As(err, &op):
			return usagef("worker pool address %s is in use: %v; choose another with --address", o.Address, op.Err)
		case errors.As(err, &op):
			return usagef("worker pool cannot listen on %s: %v; choose another with --address", o.Address, op.Err)
		}
		return err
	}
	defer pool.Close()
	if host, _, err := net.SplitHostPort(pool.Address()); err == nil && !isLoopbackHost(host) {
		a.log.Warn("the worker pool runs whatever worker binary a job stages, for anyone who can reach it: make sure only the job server can", "address", pool.Address())
	}
	fmt.Fprintf(a.stderr, "worker pool listening on %s\n", pool.Address())
	for {
		select {
		case err := <-pool.Failures():
			a.log.Error("worker failed", "error", err)
		case <-ctx.Done():
			a.log.Info("stopping the worker pool and its workers")
			return pool.Close()
		}
	}
}

// bootArgs recognises beamctl started as a boot command by a runner that
// executes a single file: under the name "boot" (where Beam's SDK images
// keep their entrypoint) or "beamctl-boot", or with the contract's flags
// and no command, as prism's PROCESS environment does. It returns the
// arguments that make it beamctl boot, or nil.
func bootArgs(argv []string) []string {
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

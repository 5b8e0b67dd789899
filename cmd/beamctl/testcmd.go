package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/pipetest"
	"github.com/beamctl/beamctl/vet"
)

const testLong = `Run a pipeline's Go tests with their pipelines' workers as a cluster has
them: separate processes.

go test runs a ptest pipeline's DoFns inside the test process, so a DoFn
that reads a flag, or a package variable the test set, is right under go
test and wrong on every worker. beamctl test builds each package's test
binary as workers are built (-trimpath; CGO_ENABLED=0, or with --cgo as
build links them), sends the pipelines its tests run to the embedded
runner, and has beamctl's worker pool start their workers as separate
processes of that same test binary: a test binary whose TestMain calls
ptest.Main is a Beam worker too.

--target builds and runs the tests for another platform: linux/arm64 runs
under qemu-user here, as run's workers do, so that the arm64 worker is
proved to compute what the amd64 one does. Several targets run one after
another.

A package whose TestMain does not call ptest.Main cannot have separate
workers: it runs as go test would, and beamctl says so with the fix:

  func TestMain(m *testing.M) { ptest.Main(m) }

The pipeline checks of beamctl vet run first (--vet=off skips them).
--run, --count, --timeout, --short, --race and --verbose pass to go test
as -run, -count, -timeout, -short, -race and -v; arguments after -- go to
the test binaries. The report is go test's; --output json is go test
-json's events, each with its "Target".

Exit status: 0 all tests passed, 1 a test failed or did not build (or the
checks found mistakes), 2 usage, 130 interrupted.`

func newTestCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test [PKG...] [flags] [-- TEST BINARY ARGS...]",
		Short: "Run a pipeline's tests with workers in separate processes, for any target",
		Long:  testLong,
		Example: `  beamctl test ./...
  beamctl test ./pipeline --target linux/amd64,linux/arm64
  beamctl test ./pipeline --run TestCount -v --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			pkgs, binArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				pkgs, binArgs = args[:dash], args[dash:]
			}
			first := "."
			if len(pkgs) > 0 {
				first = pkgs[0]
			}
			if err := a.setup(cmd, pipelineDir(cmd.Context(), first)); err != nil {
				return err
			}
			return a.test(cmd, pkgs, binArgs)
		},
	}
	f := cmd.Flags()
	f.StringSlice("target", []string{"host"}, "platforms OS/ARCH[/VARIANT] to build and run the tests for, repeatable or comma-separated; \"host\" is this machine")
	f.String("tags", "", "build tags, as go test -tags takes them")
	declareSettings(f, fields{"target": {"Target"}, "tags": nil})
	addTestFlags(f)
	addVetFlag(f)
	addCGOFlags(f)
	return cmd
}

// addTestFlags registers the settings only test has: the go test flags
// it passes on.
func addTestFlags(f *pflag.FlagSet) {
	f.String("run", "", "run only the tests matching this regular expression (go test -run)")
	f.Int("count", 0, "run each test this many times (go test -count; 0: go test's default)")
	f.String("timeout", "", "fail a test binary that runs longer than this (go test -timeout, e.g. 5m)")
	f.Bool("short", false, "tell long tests to shorten themselves (go test -short)")
	f.Bool("race", false, "build with the race detector (go test -race; the host's platform only)")
	declareSettings(f, fields{"run": nil, "count": nil, "timeout": nil, "short": nil, "race": {"Race"}})
}

func (a *app) test(cmd *cobra.Command, pkgs, binArgs []string) error {
	ctx := cmd.Context()
	v := a.v
	tc, err := build.FindToolchain(ctx, nil)
	if err != nil {
		return err
	}
	targets, err := build.ParseTargets(v.GetStringSlice("target"), tc.Platforms)
	if err != nil {
		return err
	}
	vetOn, err := a.vetOn()
	if err != nil {
		return err
	}
	first := ""
	if len(pkgs) > 0 {
		first = pkgs[0]
	}
	cgo, cc, err := a.cgoOptions(cmd.Flags(), first, tc.Platforms)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding beamctl's own path, which go test runs the test binaries with: %w", err)
	}
	o := pipetest.Options{
		Patterns:  pkgs,
		Targets:   targets,
		Tags:      v.GetString("tags"),
		Race:      v.GetBool("race"),
		CGO:       cgo,
		CC:        cc,
		Args:      binArgs,
		JSON:      a.json,
		Exec:      []string{self, testExecCmd},
		Toolchain: tc,
		Stdout:    a.stdout,
		Stderr:    a.stderr,
		Logger:    a.log,
		Notice: func(p pipetest.Package, why string) {
			fmt.Fprintf(a.stderr, "beamctl: %s: %s\n", p.ImportPath, why)
		},
	}
	if r := v.GetString("run"); r != "" {
		o.TestFlags = append(o.TestFlags, "-run", r)
	}
	if n := v.GetInt("count"); n < 0 {
		return badValue("count", "--count %d is negative: give how many times to run each test", n)
	} else if n > 0 {
		o.TestFlags = append(o.TestFlags, "-count", strconv.Itoa(n))
	}
	if t := v.GetString("timeout"); t != "" {
		o.TestFlags = append(o.TestFlags, "-timeout", t)
	}
	if v.GetBool("short") {
		o.TestFlags = append(o.TestFlags, "-short")
	}
	if v.GetBool("verbose") {
		o.TestFlags = append(o.TestFlags, "-v")
	}
	if vetOn {
		bo := build.Options{Tags: o.Tags, CGO: cgo, CC: cc, Toolchain: tc, Logger: a.log}
		rep, err := vet.Run(ctx, bo.VetOptions(pkgs...))
		if err != nil {
			// A package that does not compile is go test's to report.
			a.log.Debug("the pipeline checks did not run", "error", err)
		} else if len(rep.Findings) > 0 {
			return &vet.FindingsError{Findings: rep.Findings}
		}
	}
	// prism logs through the process-wide default logger; only --verbose
	// would show it, and here --verbose is go test's.
	a.silencePrism()
	res, err := pipetest.Run(ctx, o)
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return &codeError{code: exitFailure}
	}
	return nil
}

// testExecCmd is the hidden command go test executes each test binary
// with, under beamctl test.
const testExecCmd = "test-exec"

func newTestExecCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    testExecCmd + " CONFIG TESTBINARY [ARGS...]",
		Short:  "Run one test binary for beamctl test, serving its workers",
		Hidden: true,
		// The test binary's arguments are its own.
		DisableFlagParsing: true,
		Args:               cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			cfg, err := pipetest.ReadExecConfig(args[0])
			if err != nil {
				return err
			}
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			// go test signals a test binary that outlives its timeout with
			// SIGQUIT, for its goroutines' stacks.
			quit := make(chan os.Signal, 1)
			signal.Notify(quit, syscall.SIGQUIT)
			defer signal.Stop(quit)
			a.silencePrism()
			code, err := pipetest.Exec(cmd.Context(), pipetest.ExecOptions{
				Config:  *cfg,
				Argv:    args[1:],
				Dir:     dir,
				Stdout:  a.stdout,
				Stderr:  a.stderr,
				Signals: quit,
				Logger:  a.log,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return &codeError{code: code}
			}
			return nil
		},
	}
}

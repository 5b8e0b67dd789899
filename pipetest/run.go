package pipetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/internal/gomod"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/internal/proc"
	"github.com/beamctl/beamctl/loopback"
)

// Options configure Run.
type Options struct {
	// Patterns name the packages, as go test takes them. Default ".".
	Patterns []string
	// WorkDir is where Patterns are resolved and go test runs. Default:
	// the current directory.
	WorkDir string
	// Targets are the platforms the tests are built for and run on, one
	// after another. Default: the host's.
	Targets []build.Platform
	// Tags pass through to go test -tags.
	Tags string
	// Race builds with the race detector: the host's platform only.
	Race bool
	// CGO and CC build the tests with cgo, as build.Options do the
	// workers.
	CGO build.CGOMode
	CC  map[build.Platform]string
	// TestFlags pass through to go test: -run, -count, -v, -timeout,
	// -short, each with its value.
	TestFlags []string
	// Args follow -args: the test binaries' own arguments.
	Args []string
	// JSON reports as go test -json does, each event with its target.
	JSON bool
	// Exec is the command go test executes each test binary with; Run
	// appends the path of the configuration it writes, and the program
	// must call Exec with it (beamctl's own hidden command).
	Exec []string
	// Toolchain runs go. Default: go on PATH.
	Toolchain *build.Toolchain
	// Stdout receives go test's report, Stderr its other output.
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	// Notice is told of each package whose tests cannot have separate
	// workers, and why.
	Notice func(Package, string)

	// cgo is how each target builds with cgo.
	cgo map[build.Platform]build.CGOBuild
}

// Result is the outcome of every target's tests.
type Result struct {
	// Failed are the targets whose tests failed or did not build.
	Failed []build.Platform
}

// Run runs the tests of the packages for each target, with their pipelines
// on one embedded runner.
func Run(ctx context.Context, o Options) (*Result, error) {
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	if err := o.defaults(ctx); err != nil {
		return nil, err
	}
	for _, t := range o.Targets {
		// As run refuses a worker this machine cannot start: before
		// anything is built.
		if err := loopback.Check(t.OS, t.Arch); err != nil {
			return nil, err
		}
		if o.Race && t != build.HostPlatform() {
			return nil, problem.Usagef("leave out {Race}, or test only the host's platform "+build.HostPlatform().String(),
				"the race detector runs only on the host's platform, not %s", t).About("Race")
		}
	}
	env := o.Toolchain.Environ()
	// As build refuses a target without a C compiler: before anything
	// is built.
	o.cgo = map[build.Platform]build.CGOBuild{}
	for _, t := range o.Targets {
		c, err := build.CGOFor(t, o.CGO, o.CC, env)
		if err != nil {
			return nil, err
		}
		o.cgo[t] = c
	}
	// go test, like go list, takes packages of the module it runs in.
	groups := gomod.ByModule(o.WorkDir, o.Patterns)
	var pkgs []Package
	for _, g := range groups {
		found, err := List(ctx, o.Toolchain.Go, o.targetEnv(env, o.Targets[0]), g.Dir, o.buildFlags(o.Targets[0]), g.Patterns)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, found...)
		// As build does: a test that needs cgo, built without it, would
		// fail in the compiler with errors that never say cgo. A race
		// build has cgo on.
		if o.CGO == build.CGOOff && !o.Race {
			name, err := o.Toolchain.CGOPackage(ctx, g.Dir, o.Targets[0], true, o.buildFlags(o.Targets[0]), o.Tags, g.Patterns...)
			if err != nil {
				log.Debug("listing the packages that use cgo", "error", err)
			}
			if name != "" {
				return nil, &build.CGOError{Package: name}
			}
		}
	}
	res := &Result{}
	cfg := ExecConfig{Workers: []string{}}
	for _, p := range pkgs {
		if !p.HasTests {
			continue
		}
		switch {
		case p.Workers:
			cfg.Workers = append(cfg.Workers, p.Dir)
		case p.UsesBeam && o.Notice != nil:
			o.Notice(p, "its TestMain does not call ptest.Main, so its pipelines run inside the test process, as under go test, not on separate workers; to test them as a cluster runs them, "+WorkersFix)
		}
	}

	runner, err := embeddedrunner.Start(ctx, embeddedrunner.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("starting the embedded runner: %w", err)
	}
	defer runner.Close()
	cfg.Endpoint = runner.Endpoint()
	tmp, err := os.MkdirTemp("", "beamctl-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cfgPath := filepath.Join(tmp, "exec.json")
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}

	for _, t := range o.Targets {
		if len(o.Targets) > 1 && !o.JSON {
			fmt.Fprintf(o.Stdout, "# %s\n", t)
		}
		passed := true
		for _, g := range groups {
			ok, err := o.runTarget(ctx, t, g, env, cfgPath, log)
			if err != nil {
				return nil, err
			}
			passed = passed && ok
		}
		if !passed {
			res.Failed = append(res.Failed, t)
		}
	}
	return res, nil
}

func (o *Options) defaults(ctx context.Context) error {
	if len(o.Patterns) == 0 {
		o.Patterns = []string{"."}
	}
	if o.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		o.WorkDir = wd
	}
	if len(o.Targets) == 0 {
		o.Targets = []build.Platform{build.HostPlatform()}
	}
	if len(o.Exec) == 0 {
		return errors.New("no program to execute test binaries with")
	}
	if o.Toolchain == nil {
		tc, err := build.FindToolchain(ctx, nil)
		if err != nil {
			return err
		}
		o.Toolchain = tc
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	return nil
}

// buildFlags decide how the tests for t compile: as workers do.
func (o *Options) buildFlags(t build.Platform) []string {
	flags := []string{"-trimpath"}
	c := o.cgo[t]
	if tags := build.AddTags(o.Tags, c.Tags); tags != "" {
		flags = append(flags, "-tags", tags)
	}
	if c.LDFlags != "" {
		flags = append(flags, "-ldflags", c.LDFlags)
	}
	if o.Race {
		flags = append(flags, "-race")
	}
	return flags
}

// targetEnv is env with what selects t and its cgo build.
func (o *Options) targetEnv(env []string, t build.Platform) []string {
	return append(append(slices.Clip(env), t.BuildEnv(o.Race)...), o.cgo[t].Env...)
}

// runTarget runs go test for one target and reports whether it passed.
func (o *Options) runTarget(ctx context.Context, t build.Platform, g gomod.Group, env []string, cfgPath string, log *slog.Logger) (bool, error) {
	args := append([]string{"test", "-exec", quoteFields(append(slices.Clip(o.Exec), cfgPath))}, o.buildFlags(t)...)
	if o.JSON {
		args = append(args, "-json")
	}
	args = append(args, o.TestFlags...)
	args = append(args, g.Patterns...)
	if len(o.Args) > 0 {
		args = append(append(args, "-args"), o.Args...)
	}
	stdout := o.Stdout
	var events *targetEvents
	if o.JSON {
		events = &targetEvents{to: o.Stdout, target: t.String()}
		stdout = events
	}
	log.Debug("go test", "target", t, "args", args)
	res, err := proc.Run(ctx, proc.Cmd{
		Argv:   append([]string{o.Toolchain.Go}, args...),
		Env:    o.targetEnv(env, t),
		Dir:    g.Dir,
		Stdout: stdout,
		Stderr: o.Stderr,
	}, proc.Options{Grace: 5 * time.Second, Logger: log})
	if events != nil {
		events.flush()
	}
	switch {
	case err != nil:
		return false, fmt.Errorf("starting go test: %w", err)
	case res.Stopped:
		return false, ctx.Err()
	}
	return res.Err == nil, nil
}

// quoteFields joins a command line as go test -exec splits it.
func quoteFields(fields []string) string {
	quoted := make([]string, len(fields))
	for i, f := range fields {
		if f == "" || strings.ContainsAny(f, " \t\n'\"") {
			quoted[i] = "'" + f + "'"
			if strings.Contains(f, "'") {
				quoted[i] = `"` + f + `"`
			}
			continue
		}
		quoted[i] = f
	}
	return strings.Join(quoted, " ")
}

// targetEvents adds the target to each of go test's JSON events, so that
// the events of several targets' runs stay apart.
type targetEvents struct {
	to      io.Writer
	target  string
	partial []byte
}

func (w *targetEvents) Write(b []byte) (int, error) {
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
}

func (w *targetEvents) flush() {
	if len(w.partial) > 0 {
		w.line(w.partial)
		w.partial = nil
	}
}

func (w *targetEvents) line(l []byte) {
	var ev map[string]any
	if json.Unmarshal(l, &ev) != nil {
		// Not an event (go's own output): passed on as it is.
		w.to.Write(append(slices.Clip(l), '\n'))
		return
	}
	ev["Target"] = w.target
	out, _ := json.Marshal(ev)
	w.to.Write(append(out, '\n'))
}

package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/beamctl/beamctl/internal/proc"
)

// Toolchain is the go command beamctl builds with.
type Toolchain struct {
	// Go is the path of the go command.
	Go string
	// Version is its version, e.g. go1.26.8.
	Version string
	// Platforms are the GOOS/GOARCH pairs it can build.
	Platforms []Platform
	// Env is the environment go runs with; nil means os.Environ().
	Env []string
}

// ToolchainError says the Go toolchain is missing or broken.
type ToolchainError struct{ Err error }

func (e *ToolchainError) Error() string { return e.Err.Error() }
func (e *ToolchainError) Unwrap() error { return e.Err }

// Invalid marks the error as a problem with the user's set-up rather than
// with the pipeline.
func (e *ToolchainError) Invalid() bool { return true }

// FindToolchain locates go on PATH (as env sees it) and asks it for its
// version and platform list.
func FindToolchain(ctx context.Context, env []string) (*Toolchain, error) {
	goBin, err := lookPath("go", env)
	if err != nil {
		return nil, &ToolchainError{errNoGo}
	}
	tc := &Toolchain{Go: goBin, Env: env}
	out, err := tc.output(ctx, "", nil, "env", "GOVERSION")
	if err != nil {
		return nil, &ToolchainError{fmt.Errorf("%s does not work: %w", goBin, err)}
	}
	tc.Version = strings.TrimSpace(string(out))
	out, err = tc.output(ctx, "", nil, "tool", "dist", "list", "-json")
	if err != nil {
		return nil, &ToolchainError{fmt.Errorf("%s cannot list its platforms: %w", goBin, err)}
	}
	var list []struct{ GOOS, GOARCH string }
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, &ToolchainError{fmt.Errorf("reading go tool dist list: %w", err)}
	}
	for _, p := range list {
		tc.Platforms = append(tc.Platforms, Platform{OS: p.GOOS, Arch: p.GOARCH})
	}
	return tc, nil
}

// lookPath is exec.LookPath against the PATH in env, so a caller's
// environment (not beamctl's own) decides which go runs.
func lookPath(name string, env []string) (string, error) {
	if env == nil {
		return exec.LookPath(name)
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, string(os.PathListSeparator)) {
		if dir == "" {
			dir = "."
		}
		p := dir + string(os.PathSeparator) + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Environ is the environment go runs with: Env, or this process's.
func (tc *Toolchain) Environ() []string {
	if tc.Env != nil {
		return tc.Env
	}
	return os.Environ()
}

// command prepares a short go invocation (go env, go list) that stops when
// ctx ends: go gets an interrupt first, and is killed only if it lingers.
// Builds, which start compilers and a linker, run through build instead.
func (tc *Toolchain) command(ctx context.Context, dir string, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tc.Go, args...)
	cmd.Dir = dir
	cmd.Env = mergeEnv(tc.Environ(), extraEnv)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = childAttr()
	return cmd
}

// build runs a go build that leaves nothing behind when ctx ends. On an
// interrupt of its own, go exits without waiting for the compilers and the
// linker it started, which run on, and without removing its work
// directory: go and they share a process group, killed as one, and the
// work directory is one of this build's own under tmpRoot (the outputs'
// filesystem, so that go renames a relinked output into place), removed
// on every path.
func (tc *Toolchain) build(ctx context.Context, dir string, extraEnv []string, tmpRoot string, args ...string) ([]byte, error) {
	work, err := os.MkdirTemp(tmpRoot, "go-")
	if err != nil {
		return nil, fmt.Errorf("creating the build's work directory: %w", err)
	}
	defer os.RemoveAll(work)
	var out bytes.Buffer
	res, err := proc.Run(ctx, proc.Cmd{
		Argv:   append([]string{tc.Go}, args...),
		Dir:    dir,
		Env:    mergeEnv(tc.Environ(), append(slices.Clip(extraEnv), "GOTMPDIR="+work)),
		Stdout: &out,
		Stderr: &out,
	}, proc.Options{})
	switch {
	case err != nil:
		return nil, err
	case res.Stopped:
		return out.Bytes(), ctx.Err()
	}
	return out.Bytes(), res.Err
}

// output runs go and returns its stdout; on failure the error carries
// go's own stderr.
func (tc *Toolchain) output(ctx context.Context, dir string, extraEnv []string, args ...string) ([]byte, error) {
	cmd := tc.command(ctx, dir, extraEnv, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("go %s: %s", args[0], msg)
		}
		return nil, fmt.Errorf("go %s: %w", args[0], err)
	}
	return out, nil
}

// mergeEnv returns base with the keys of extra replaced or added.
func mergeEnv(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	keys := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

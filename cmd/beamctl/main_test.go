package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/stage/stagetest"
)

// cacheDir is shared by every test in this binary: the first build of a
// pipeline links it, later ones reuse it, as a user's builds would.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "beamctl-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	os.Setenv("BEAMCTL_CACHE_DIR", cacheDir)
	// A user's own config must not change what the tests see.
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	code := m.Run()
	os.RemoveAll(dir)
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// checkText reports what text, a command's stdout or stderr (stream),
// lacks of want or holds of not, and whether it is longer than max bytes
// (0: any length).
func checkText(t *testing.T, stream, text string, want, not []string, max int) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", stream, w, text)
		}
	}
	for _, n := range not {
		if strings.Contains(text, n) {
			t.Errorf("%s has %q:\n%s", stream, n, text)
		}
	}
	if max > 0 && len(text) > max {
		t.Errorf("%s has %d bytes, more than %d:\n%s", stream, len(text), max, text)
	}
}

// beamctl runs the CLI in process.
func beamctl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

var (
	prismOnce sync.Once
	prismBin  string
	prismErr  error
)

// startPrism starts an upstream prism job server process for one test, with
// env added to its environment; the binary is built once per test binary.
func startPrism(t *testing.T, env ...string) *stagetest.Prism {
	t.Helper()
	prismOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		prismBin, prismErr = stagetest.Build(ctx, filepath.Join(cacheDir, "bin"), "prism", stagetest.PrismPackage)
	})
	if prismErr != nil {
		t.Fatal(prismErr)
	}
	p, err := stagetest.StartPrism(context.Background(), prismBin, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// builtCommand is a command of this module built once per test binary.
type builtCommand struct {
	once sync.Once
	path string
	err  error
}

func (c *builtCommand) build(t *testing.T, name, pkg string) string {
	t.Helper()
	c.once.Do(func() {
		c.path = filepath.Join(cacheDir, "bin", name)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", c.path, pkg).CombinedOutput()
		if err != nil {
			c.err = fmt.Errorf("building %s: %v\n%s", name, err, out)
		}
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.path
}

var beamctlCmd, bootCmd, svgCmd builtCommand

// beamctlBinary builds beamctl, for tests that need a separate process
// (signals, PATH without Go).
func beamctlBinary(t *testing.T) string { return beamctlCmd.build(t, "beamctl", ".") }

// startStderr starts cmd with its standard error piped to the test.
func startStderr(t *testing.T, cmd *exec.Cmd) io.ReadCloser {
	t.Helper()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return pipe
}

// svgBinary builds beamctl-svg beside beamctlBinary, where beamctl finds
// it, as beside beamctl in a release.
func svgBinary(t *testing.T) string { return svgCmd.build(t, "beamctl-svg", "../beamctl-svg") }

// bootBinary builds beamctl-boot, the image entrypoint: it must pass the
// same contract tests as beamctl boot.
func bootBinary(t *testing.T) string { return bootCmd.build(t, "beamctl-boot", "../beamctl-boot") }

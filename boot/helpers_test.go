package boot_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/boot"
)

// outputLog collects output written from several goroutines and lets a test
// wait for a piece of it.
type outputLog struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newOutputLog() *outputLog { return &outputLog{changed: make(chan struct{})} }

func (o *outputLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *outputLog) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output contains s.
func (o *outputLog) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		found := strings.Contains(o.b.String(), s)
		ch := o.changed
		o.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %q in output after %v:\n%s", s, timeout, o.String())
		}
	}
}

func debugLogger(w *outputLog) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// binaries builds examples/wordcount once per test binary and platform.
var binaries struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// wordcount returns examples/wordcount built for linux/goarch.
func wordcount(t *testing.T, goarch string) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if p, ok := binaries.built[goarch]; ok {
		return p
	}
	if binaries.dir == "" {
		d, err := os.MkdirTemp("", "loopback-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir, binaries.built = d, map[string]string{}
	}
	out := filepath.Join(binaries.dir, "wc-"+goarch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "github.com/beamctl/beamctl/examples/wordcount")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wordcount for linux/%s: %v\n%s", goarch, err, b)
	}
	binaries.built[goarch] = out
	return out
}

// assertNoWorkers fails if a child of this process other than a pool's
// guard is left (running or not reaped), or any process still runs
// something under dir.
func assertNoWorkers(t *testing.T, dir string) {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := filepath.Base(p)
		if pid == self {
			continue
		}
		// An open pool's guard (internal/proc) is no worker.
		if env, err := os.ReadFile(p + "/environ"); err == nil && bytes.Contains(env, []byte("BEAMCTL_INTERNAL_GUARD=")) {
			continue
		}
		if stat, err := os.ReadFile(p + "/stat"); err == nil {
			// The command name, in parentheses, may hold spaces.
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(f) > 1 && f[1] == self {
				t.Errorf("process %s (state %s) is still a child of this test", pid, f[0])
			}
		}
		if cmdline, err := os.ReadFile(p + "/cmdline"); err == nil && bytes.Contains(cmdline, []byte(dir)) {
			t.Errorf("process %s still runs %q", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}

// noFailure fails if the pool has reported a failure.
func noFailure(t *testing.T, p *boot.Pool) {
	t.Helper()
	select {
	case err := <-p.Failures():
		t.Errorf("unexpected worker failure: %v", err)
	default:
	}
}

// nextFailure waits for the pool's next failure.
func nextFailure(t *testing.T, p *boot.Pool, timeout time.Duration) *boot.WorkerError {
	t.Helper()
	select {
	case err := <-p.Failures():
		we, ok := err.(*boot.WorkerError)
		if !ok {
			t.Fatalf("failure %v is a %T, want *WorkerError", err, err)
		}
		return we
	case <-time.After(timeout):
		t.Fatalf("no worker failure within %v", timeout)
	}
	return nil
}

// lookPath finds a program on PATH, or skips the test without it.
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skip(err)
	}
	return p
}

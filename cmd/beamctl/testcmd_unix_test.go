//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/syncbuf"
)

// TestTestInterrupted interrupts beamctl test while a test's worker runs:
// beamctl exits 130 and leaves no test binary or worker running.
func TestTestInterrupted(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(beamctlBinary(t), "test", pipetests+"slow", "-v")
	var stdout syncbuf.Buffer
	cmd.Stdout = &stdout
	pipe := startStderr(t, cmd)
	go io.Copy(io.Discard, pipe)
	deadline := time.Now().Add(3 * time.Minute)
	worker := 0
	for worker == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no worker started:\n%s", stdout.String())
		}
		time.Sleep(50 * time.Millisecond)
		fmt.Sscanf(afterLast(stdout.String(), "slow: worker "), "%d", &worker)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130\n%s", err, stdout.String())
	}
	for start := time.Now(); syscall.Kill(worker, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			syscall.Kill(worker, syscall.SIGKILL)
			t.Fatalf("worker %d outlived beamctl test", worker)
		}
	}
}

// afterLast is what follows the last sep in s, or "".
func afterLast(s, sep string) string {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return ""
	}
	return s[i+len(sep):]
}

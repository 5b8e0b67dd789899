package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterrupts feeds signals to the interrupt handler: the first cancels
// the command, the second aborts its waits and, should the command not
// return within the bound, exits 130; a third exits at once; and the
// handler ends when the command returns.
func TestInterrupts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		signals int
		// returns: the command returns before the bound after the last
		// signal.
		returns  bool
		canceled bool
		aborted  bool
		exit     bool
	}{
		{name: "none", returns: true},
		{name: "one", signals: 1, returns: true, canceled: true},
		{name: "two, cleanup in time", signals: 2, returns: true, canceled: true, aborted: true},
		{name: "two, cleanup too slow", signals: 2, canceled: true, aborted: true, exit: true},
		{name: "three", signals: 3, returns: true, canceled: true, aborted: true, exit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			abort, stopWaits := context.WithCancelCause(context.Background())
			defer stopWaits(nil)
			sigs := make(chan os.Signal, 3)
			exited := make(chan int, 1)
			bound := time.Hour // a command that returns is never waited for
			if !tc.returns {
				bound = time.Millisecond
			}
			var stderr bytes.Buffer
			stop := interrupts(sigs, cancel, stopWaits, &stderr, bound, func(code int) { exited <- code })
			for range tc.signals {
				sigs <- syscall.SIGINT
			}
			if tc.exit {
				if code := <-exited; code != exitInterrupted {
					t.Errorf("exit %d; want %d", code, exitInterrupted)
				}
			}
			if tc.canceled {
				<-ctx.Done()
			}
			if tc.aborted {
				<-abort.Done()
			}
			// stop waits for the handler: after it, what it did is all
			// it will do.
			stop()
			var intr *interrupted
			if got := errors.As(context.Cause(ctx), &intr); got != tc.canceled {
				t.Errorf("command cancelled by an interrupt: %v; want %v", got, tc.canceled)
			}
			if got := abort.Err() != nil; got != tc.aborted {
				t.Errorf("waits aborted: %v; want %v", got, tc.aborted)
			}
			if !tc.exit && len(exited) > 0 {
				t.Errorf("exit %d; want none: the command returned", <-exited)
			}
			if tc.aborted && !strings.Contains(stderr.String(), "cleaning up") {
				t.Errorf("the second interrupt was not told:\n%s", stderr.String())
			}
		})
	}
}

// TestNoGoroutineOutlivesCommand runs commands in process and checks that
// every goroutine they started has ended once run returns: the signal
// handler, progress containers, the embedded runner, the worker pool,
// gRPC connections, graph's capture service.
func TestNoGoroutineOutlivesCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a pipeline")
	}
	counts := filepath.Join(t.TempDir(), "counts.txt")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"version", []string{"version"}, 0},
		{"vet", []string{"vet", "../../vet/testdata/bad/flagread"}, 1},
		{"failing build", []string{"build", "./testdata/broken", "--out", t.TempDir()}, 1},
		{"embedded run", []string{"run", "../../examples/wordcount", "--target", "host", "--out", t.TempDir(),
			"--", "--input=" + wordcountInput, "--output=" + counts}, 0},
		{"graph", []string{"graph", builtDist(t), "--format", "json", "--out", filepath.Join(t.TempDir(), "g.json"),
			"--", "--input=" + wordcountInput, "--output=" + counts}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := goroutines()
			if r := beamctl(t, tc.args...); r.code != tc.code {
				t.Fatalf("exit %d; want %d\n%s", r.code, tc.code, r.stderr)
			}
			// Goroutines end a little after what they serve has been
			// told to stop: poll, with a deadline.
			deadline := time.Now().Add(10 * time.Second)
			var left []string
			for {
				left = outlived(before, goroutines())
				if len(left) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(left) > 0 {
				t.Errorf("%d goroutines outlived beamctl %s:\n\n%s", len(left), tc.name, strings.Join(left, "\n\n"))
			}
		})
	}
}

// longLived are goroutines that a package starts once per process, on
// first use, and keeps: each is named by the function at the bottom of its
// stack. Nothing else may outlive a command.
var longLived = []string{
	// os/signal's receiver of the process's signals, started by the first
	// signal.Notify.
	"os/signal.loop",
}

var goroutineID = regexp.MustCompile(`^goroutine (\d+) `)

// goroutines are the stacks of all goroutines, by id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if m := goroutineID.FindStringSubmatch(g); m != nil {
			out[m[1]] = g
		}
	}
	return out
}

// outlived are the stacks of goroutines in after that were not in before
// and are not among the long-lived ones.
func outlived(before, after map[string]string) []string {
	var left []string
	for id, stack := range after {
		if _, ok := before[id]; ok || slices.ContainsFunc(longLived, func(fn string) bool { return createdBy(stack, fn) }) {
			continue
		}
		left = append(left, stack)
	}
	slices.Sort(left)
	return left
}

// createdBy reports whether the goroutine of stack runs fn at its bottom,
// the function it was started with.
func createdBy(stack, fn string) bool {
	lines := strings.Split(strings.TrimSpace(stack), "\n")
	for i := len(lines) - 1; i > 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "created by ") || strings.HasPrefix(l, "/") || strings.HasPrefix(l, "_") {
			continue
		}
		return strings.HasPrefix(l, fn+"(")
	}
	return false
}

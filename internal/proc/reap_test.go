//go:build linux

package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as one of the processes below, by
// name.
const helperEnv = "PROC_TEST_HELPER"

func init() {
	if name, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(helper(name))
	}
}

func helper(name string) int {
	switch name {
	case "sleeper":
		time.Sleep(time.Hour)
		return 0
	case "detacher":
		// A worker that leaves a child of its own session behind, reports
		// it, and exits 3 once descriptor 3 has said "go" and closed.
		// The reaper's socket must not reach it.
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); strings.HasPrefix(l, "socket:") {
				fmt.Printf("descriptor %s is a socket\n", fd.Name())
				return 98
			}
		}
		if !detach() {
			return 1
		}
		b, err := io.ReadAll(os.NewFile(3, "go"))
		if err != nil || string(b) != "go\n" {
			fmt.Printf("descriptor 3 gave %q, %v\n", b, err)
			return 99
		}
		return 3
	case "stubborn":
		// A worker that ignores SIGTERM and leaves a child of its own
		// session behind.
		signal.Ignore(syscall.SIGTERM)
		if !detach() {
			return 1
		}
		time.Sleep(time.Hour)
		return 0
	case "polite":
		// A worker that exits 42 on SIGTERM, after its child in the same
		// process group has exited on the same signal.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), helperEnv+"=polite-child")
		child.Stdout = os.Stdout
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("worker ready")
		<-sigs
		child.Wait()
		fmt.Println("worker got TERM")
		return 42
	case "polite-child":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Println("child ready")
		<-sigs
		fmt.Println("child got TERM")
		return 0
	case "fail":
		return 5
	case "suicide":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
		return 0
	case "supervisor":
		// A process that runs the stubborn worker as a pool would, with a
		// guard, until it is killed.
		g, err := StartGuard()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, err = Run(context.Background(), Cmd{
			Argv:   []string{os.Args[0], "-test.run=^$"},
			Env:    append(os.Environ(), helperEnv+"=stubborn"),
			Stdout: os.Stdout, Stderr: os.Stderr,
		}, Options{Reap: true, Guard: g, Started: func(pid int) { fmt.Printf("reaper %d\n", pid) }})
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 2
}

// detach starts a sleeper in a session of its own, as a daemon does, and
// reports its pid.
func detach() bool {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), helperEnv+"=sleeper")
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return false
	}
	fmt.Printf("child %d\n", child.Process.Pid)
	return true
}

// helperCmd is the test binary acting as helper name.
func helperCmd(name string) Cmd {
	return Cmd{Argv: []string{os.Args[0], "-test.run=^$"}, Env: append(os.Environ(), helperEnv+"="+name)}
}

// lines reads r's lines into a channel.
func lines(r io.Reader) <-chan string {
	c := make(chan string, 16)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c <- sc.Text()
		}
	}()
	return c
}

// expect returns the next line from c, which must start with prefix.
func expect(t *testing.T, c <-chan string, prefix string) string {
	t.Helper()
	select {
	case l, ok := <-c:
		if !ok || !strings.HasPrefix(l, prefix) {
			t.Fatalf("got line %q (open %v), want one starting %q", l, ok, prefix)
		}
		return strings.TrimPrefix(l, prefix)
	case <-time.After(30 * time.Second):
		t.Fatalf("no line %q after 30s", prefix)
	}
	return ""
}

// detached follows the process whose pid a helper printed after prefix: it
// must have left its parent's session. The process is killed when the test
// ends, whatever happens.
func detached(t *testing.T, c <-chan string, prefix string) (pid, pidfd int) {
	t.Helper()
	pid, err := strconv.Atoi(expect(t, c, prefix))
	if err != nil {
		t.Fatal(err)
	}
	pidfd = follow(t, pid)
	assertDetached(t, pid)
	return pid, pidfd
}

// assertDetached fails unless pid leads a session of its own; setsid is
// done by the time Start returns in the helper that started it.
func assertDetached(t *testing.T, pid int) {
	t.Helper()
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Fatalf("process %d is in session %d (%v), not a session of its own", pid, sid, err)
	}
}

// follow opens a pidfd for pid, which tells when the process exits
// whoever reaps it, and kills it at the end of the test.
func follow(t *testing.T, pid int) int {
	t.Helper()
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	t.Cleanup(func() {
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		unix.Close(pidfd)
	})
	return pidfd
}

// exited reports whether the process behind pidfd has exited within d.
func exited(t *testing.T, pidfd int, d time.Duration) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return n > 0
	}
}

// assertReaped fails unless pid has exited and been reaped: no process,
// not even a zombie, is left with its pid.
func assertReaped(t *testing.T, what string, pid, pidfd int) {
	t.Helper()
	if !exited(t, pidfd, 0) {
		t.Errorf("%s (pid %d) still runs", what, pid)
		return
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		t.Errorf("%s (pid %d) was not reaped: %s", what, pid, stat)
	}
}

// assertNoChildren fails if this process has a child left, running or a
// zombie: once Run returns, the reaper and all below it are gone.
func assertNoChildren(t *testing.T) {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			t.Errorf("a child is left: %s", stat)
		}
	}
}

type runResult struct {
	res Result
	err error
}

func runAsync(ctx context.Context, c Cmd, o Options) <-chan runResult {
	done := make(chan runResult, 1)
	go func() {
		res, err := Run(ctx, c, o)
		done <- runResult{res, err}
	}()
	return done
}

func wait(t *testing.T, done <-chan runResult) Result {
	t.Helper()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		return r.res
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s")
	}
	return Result{}
}

// detacherRun is a worker run by Run that has reported the child it
// detached.
type detacherRun struct {
	done         <-chan runResult
	out          <-chan string // what else the worker says
	child, pidfd int
	goW          *os.File // the worker's descriptor 3 is its read end
}

// startDetacher runs helper, which detaches a child, through a reaper, and
// returns once the child runs.
func startDetacher(t *testing.T, ctx context.Context, helper string, o Options) *detacherRun {
	t.Helper()
	goR, goW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { goW.Close() })
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outR.Close() })
	c := helperCmd(helper)
	c.Stdout, c.Stderr, c.ExtraFiles = outW, os.Stderr, []*os.File{goR}
	started := make(chan struct{})
	o.Reap, o.Started = true, func(int) { close(started) }
	r := &detacherRun{done: runAsync(ctx, c, o), out: lines(outR), goW: goW}
	r.child, r.pidfd = detached(t, r.out, "child ")
	// The worker has them once Run says it started.
	<-started
	goR.Close()
	outW.Close()
	return r
}

// TestReapWorkerExits runs a worker that starts a child in a session of
// its own and then exits 3: Run returns 3 once that child has been killed
// and reaped, and the worker's descriptors were its own.
func TestReapWorkerExits(t *testing.T) {
	r := startDetacher(t, context.Background(), "detacher", Options{})
	fmt.Fprintln(r.goW, "go")
	r.goW.Close()

	res := wait(t, r.done)
	if res.Code() != 3 || res.Stopped {
		t.Errorf("Run = code %d (%v), stopped %v; want the worker's exit code 3", res.Code(), res.Err, res.Stopped)
	}
	for l := range r.out {
		t.Errorf("worker said %q", l)
	}
	assertReaped(t, "the worker's detached child", r.child, r.pidfd)
	assertNoChildren(t)
}

// TestReapWorkerStopped stops a worker that left a detached child behind:
// SIGTERM reaches the worker, and the child goes with it. A worker that
// ignores SIGTERM is killed after the grace period, and its child too.
func TestReapWorkerStopped(t *testing.T) {
	for _, tc := range []struct {
		helper string
		code   int
	}{
		{"detacher", 128 + int(syscall.SIGTERM)},
		{"stubborn", 128 + int(syscall.SIGKILL)},
	} {
		t.Run(tc.helper, func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			r := startDetacher(t, ctx, tc.helper, Options{Grace: 100 * time.Millisecond})
			stop()
			res := wait(t, r.done)
			if res.Code() != tc.code || !res.Stopped {
				t.Errorf("Run = code %d (%v), stopped %v; want code %d, stopped", res.Code(), res.Err, res.Stopped, tc.code)
			}
			assertReaped(t, "the worker's detached child", r.child, r.pidfd)
			assertNoChildren(t)
		})
	}
}

// TestReapExitCodes checks that a worker's exit code, or the signal that
// killed it, comes through the reaper as it would without one.
func TestReapExitCodes(t *testing.T) {
	for _, tc := range []struct {
		helper string
		code   int
	}{
		{"suicide", 137},
		{"fail", 5},
	} {
		for _, reap := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/reap=%v", tc.helper, reap), func(t *testing.T) {
				c := helperCmd(tc.helper)
				c.Stderr = os.Stderr
				res, err := Run(context.Background(), c, Options{Reap: reap})
				if err != nil {
					t.Fatal(err)
				}
				if res.Code() != tc.code {
					t.Errorf("code %d (%v), want %d", res.Code(), res.Err, tc.code)
				}
				var ee *exec.ExitError
				if !errors.As(res.Err, &ee) {
					t.Errorf("Err = %v, a %T; want an *exec.ExitError", res.Err, res.Err)
				}
			})
		}
	}
}

// TestReapStartError: a program that cannot be executed fails Run as it
// does without a reaper.
func TestReapStartError(t *testing.T) {
	notExec := t.TempDir() + "/not-executable"
	if err := os.WriteFile(notExec, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, argv0 := range []string{notExec, "no-such-program-anywhere"} {
		_, direct := Run(context.Background(), Cmd{Argv: []string{argv0}}, Options{})
		_, reaped := Run(context.Background(), Cmd{Argv: []string{argv0}}, Options{Reap: true})
		if direct == nil || reaped == nil || direct.Error() != reaped.Error() {
			t.Errorf("%s: Run = %v with a reaper, want %v as without", argv0, reaped, direct)
		}
		var pe *os.PathError
		if errors.As(direct, &pe) && !errors.As(reaped, &pe) {
			t.Errorf("%s: %v is no *os.PathError", argv0, reaped)
		}
	}
}

// TestReapPassesSignals sends SIGTERM to the reaper, and through Options
// Signals: the worker and the child in its group each get it.
func TestReapPassesSignals(t *testing.T) {
	for _, via := range []string{"kill", "Signals"} {
		t.Run(via, func(t *testing.T) {
			out := newLockedBuffer()
			c := helperCmd("polite")
			c.Stdout, c.Stderr = out, os.Stderr
			sigs := make(chan os.Signal, 1)
			reaper := make(chan int, 1)
			done := runAsync(context.Background(), c, Options{Reap: true, Signals: sigs, Started: func(pid int) { reaper <- pid }})
			pid := <-reaper
			out.waitFor(t, "child ready\n")
			out.waitFor(t, "worker ready\n")
			if via == "kill" {
				if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			} else {
				sigs <- syscall.SIGTERM
			}
			res := wait(t, done)
			if res.Code() != 42 {
				t.Errorf("code %d (%v), want 42 from the worker's SIGTERM handler", res.Code(), res.Err)
			}
			for _, l := range []string{"child got TERM\n", "worker got TERM\n"} {
				if !strings.Contains(out.String(), l) {
					t.Errorf("no %q in the output:\n%s", l, out.String())
				}
			}
		})
	}
}

// TestReapSupervisorKilled SIGKILLs a process that runs a worker through a
// reaper under a guard, as a pool is killed: the worker's detached child,
// which neither the parent-death signal nor the guard's group kill reach,
// dies too, and so do the worker and the reaper.
func TestReapSupervisorKilled(t *testing.T) {
	sup := exec.Command(os.Args[0], "-test.run=^$")
	sup.Env = append(os.Environ(), helperEnv+"=supervisor")
	sup.Stderr = os.Stderr
	stdout, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Wait()
	defer sup.Process.Kill()
	// The reaper is reported once the worker runs, so the lines may come
	// in either order.
	pids := map[string]int{}
	out := lines(stdout)
	for len(pids) < 2 {
		l := expect(t, out, "")
		what, pid, _ := strings.Cut(l, " ")
		if pids[what], err = strconv.Atoi(pid); err != nil {
			t.Fatalf("supervisor said %q", l)
		}
	}
	reaperPid, child := pids["reaper"], pids["child"]
	reaperFD, childFD := follow(t, reaperPid), follow(t, child)
	assertDetached(t, child)

	if err := sup.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sup.Wait()
	for _, p := range []struct {
		what  string
		pid   int
		pidfd int
	}{{"the worker's detached child", child, childFD}, {"the reaper", reaperPid, reaperFD}} {
		if !exited(t, p.pidfd, 10*time.Second) {
			t.Errorf("%s (pid %d) outlived its supervisor by 10s", p.what, p.pid)
		}
	}
}

// lockedBuffer collects output written while a test reads it.
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{changed: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.b.Write(p)
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits, within a bound, until the output holds s.
func (b *lockedBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(b.String(), s) {
		select {
		case <-b.changed:
		case <-deadline:
			t.Fatalf("no %q after 30s:\n%s", s, b.String())
		}
	}
}

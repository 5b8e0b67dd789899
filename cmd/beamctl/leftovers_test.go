package main

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/syncbuf"
)

var (
	panickyOnce, slowOnce sync.Once
	panickyDist, slowDist string
)

// distOf builds pkg for this machine into a directory of the shared cache,
// once per test binary.
func distOf(t *testing.T, once *sync.Once, dist *string, name, pkg string) string {
	t.Helper()
	once.Do(func() {
		dir := filepath.Join(cacheDir, "dist-"+name)
		if r := beamctl(t, "build", pkg, "--target", "host", "--out", dir); r.code != 0 {
			t.Fatalf("build %s: exit %d\n%s", pkg, r.code, r.stderr)
		}
		*dist = dir
	})
	if *dist == "" {
		t.Fatalf("%s was not built", pkg)
	}
	return *dist
}

// beamctlProcess runs the built beamctl: the process environment executes
// the submitting program itself as the boot command.
func beamctlProcess(t *testing.T, args ...string) result {
	t.Helper()
	return beamctlProcessIn(t, "", 3*time.Minute, args...)
}

// beamctlProcessIn runs the built beamctl in dir ("": this package's),
// killing it after timeout.
func beamctlProcessIn(t *testing.T, dir string, timeout time.Duration, args ...string) result {
	t.Helper()
	return beamctlProcessEnv(t, dir, timeout, nil, args...)
}

// beamctlEnv runs the built beamctl with the variables env added to the
// test's: a test that sets variables for beamctl can then run beside the
// others, which t.Setenv would forbid.
func beamctlEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return beamctlProcessEnv(t, "", 3*time.Minute, env, args...)
}

func beamctlProcessEnv(t *testing.T, dir string, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, beamctlBinary(t), args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return result{code, stdout.String(), stderr.String()}
}

// leftovers lists what beamctl left in dir: beamctl-* entries, and files
// over 1 MB anywhere below it.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if strings.HasPrefix(d.Name(), "beamctl-") {
			found = append(found, p)
		} else if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() > 1<<20 {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// waitClean waits until beamctl has left nothing in dir and runs nothing
// from it. Removal happens in a process of its own once a killed boot is
// gone, so it is awaited, within a bound.
func waitClean(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := leftovers(t, dir)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind in %s: %q", dir, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	assertNothingRuns(t, dir)
}

// TestProcessEnvironmentLeavesNothing runs jobs on the upstream prism job
// server with workers booted by beamctl in its PROCESS environment. prism
// ends each boot with SIGKILL; nothing of the workers may stay in the temp
// directory, whether the job succeeds, fails or is cancelled.
func TestProcessEnvironmentLeavesNothing(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	prism := startPrism(t, "TMPDIR="+tmp)

	t.Run("three jobs done", func(t *testing.T) {
		for range 3 {
			submitWordcount(t, prism, "--environment", "process")
		}
		waitClean(t, tmp)
	})

	t.Run("job fails", func(t *testing.T) {
		dist := distOf(t, &panickyOnce, &panickyDist, "panicky", "../../submit/testdata/panicky")
		r := beamctlProcess(t, "submit", dist, "--endpoint", prism.Endpoint, "--environment", "process")
		if r.code != exitFailure || !strings.Contains(r.stderr, "element 2 is not welcome") {
			t.Errorf("exit %d, want %d with the DoFn's panic:\n%s", r.code, exitFailure, r.stderr)
		}
		waitClean(t, tmp)
	})

	t.Run("job cancelled", func(t *testing.T) {
		dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")
		r := beamctlProcess(t, "submit", dist, "--endpoint", prism.Endpoint, "--environment", "process", "--detach")
		if r.code != 0 {
			t.Fatalf("submit --detach: exit %d\n%s", r.code, r.stderr)
		}
		job := strings.TrimSpace(r.stdout)
		// Cancel once a worker runs: its boot has the most to leave behind.
		waitOutput(t, prism.Output, "slow: element")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, beamctlBinary(t), "jobs", "cancel", job, "--endpoint", prism.Endpoint).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "CANCELLED") {
			t.Fatalf("jobs cancel: %v\n%s", err, out)
		}
		waitClean(t, tmp)
	})
}

// TestKilledLeavesNothing SIGKILLs a worker pool, and beamctl run, while a
// worker runs: the worker dies with them and their temporary files go.
func TestKilledLeavesNothing(t *testing.T) {
	t.Parallel()
	dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")

	t.Run("worker-pool", func(t *testing.T) {
		prism := startPrism(t)
		pool, addr := startPoolProcess(t, beamctlBinary(t), "worker-pool")
		r := beamctlProcess(t, "submit", dist, "--endpoint", prism.Endpoint, "--environment", "external", "--environment-config", addr, "--detach")
		if r.code != 0 {
			t.Fatalf("submit: exit %d\n%s", r.code, r.stderr)
		}
		waitOutput(t, pool.output, "slow: element")
		if err := pool.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-pool.exited
		waitClean(t, pool.tmp)
	})

	t.Run("run", func(t *testing.T) {
		cmd, tmp, out := startInTmp(t, "submit", dist)
		waitOutput(t, out.String, "slow: element")
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		waitClean(t, tmp)
	})
}

// waitOutput waits, within a bound, until output() contains s.
// startInTmp starts beamctl with args and a TMPDIR of its own, which
// shows what it leaves behind, and collects its standard error in out.
func startInTmp(t *testing.T, args ...string) (cmd *exec.Cmd, tmp string, out *syncbuf.Buffer) {
	t.Helper()
	tmp, out = t.TempDir(), &syncbuf.Buffer{}
	cmd = exec.Command(beamctlBinary(t), args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A test that fails before it ends the run must not leave it running.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, tmp, out
}

func waitOutput(t *testing.T, output func() string, s string) {
	t.Helper()
	waitOutputN(t, output, s, 1)
}

// waitOutputN waits for output to hold s n times.
func waitOutputN(t *testing.T, output func() string, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for strings.Count(output(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after a minute:\n%s", s, output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPoolStopsTwice sends a worker pool running a worker two SIGTERMs:
// it exits at once, and still leaves nothing behind.
func TestPoolStopsTwice(t *testing.T) {
	t.Parallel()
	pool := poolWithSlowWorker(t)
	for range 2 {
		if err := pool.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	<-pool.exited
	waitClean(t, pool.tmp)
}

// TestSweepAfterGuardKilled kills a pool together with its guard, so that
// nothing cleans up after it: the next beamctl pool to start in the same
// temporary directory removes what the dead one left.
func TestSweepAfterGuardKilled(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("finds the guard in /proc")
	}
	pool := poolWithSlowWorker(t)
	guards := processesWithEnv(t, "BEAMCTL_INTERNAL_GUARD=", "TMPDIR="+pool.tmp)
	if len(guards) == 0 {
		t.Fatal("found no guard of the pool")
	}
	for _, p := range guards {
		p.Kill()
		p.Wait()
	}
	pool.cmd.Process.Kill()
	<-pool.exited
	if left := leftovers(t, pool.tmp); len(left) == 0 {
		t.Fatal("the killed pool left nothing: the sweep has nothing to show")
	}

	// Another pool starts in the same temporary directory.
	cmd := exec.Command(beamctlBinary(t), "worker-pool", "--address", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TMPDIR="+pool.tmp)
	var out syncbuf.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out.String, "worker pool listening on")
	if !strings.Contains(out.String(), "removed a directory its dead owner left behind") {
		t.Errorf("the new pool did not say it swept:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	waitClean(t, pool.tmp)
}

// processesWithEnv finds this user's processes whose environment holds
// every one of entries.
func processesWithEnv(t *testing.T, entries ...string) []*os.Process {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var found []*os.Process
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err != nil {
			continue
		}
		all := true
		for _, e := range entries {
			all = all && strings.Contains("\x00"+string(env), "\x00"+e)
		}
		if !all {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if p, err := os.FindProcess(pid); err == nil {
			found = append(found, p)
		}
	}
	return found
}

// poolWithSlowWorker starts beamctl worker-pool and returns once a worker
// of a slow job runs in it.
func poolWithSlowWorker(t *testing.T) *poolProcess {
	t.Helper()
	dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")
	prism := startPrism(t)
	pool, addr := startPoolProcess(t, beamctlBinary(t), "worker-pool")
	if r := beamctlProcess(t, "submit", dist, "--endpoint", prism.Endpoint, "--environment", "external", "--environment-config", addr, "--detach"); r.code != 0 {
		t.Fatalf("submit: exit %d\n%s", r.code, r.stderr)
	}
	waitOutput(t, pool.output, "slow: element")
	return pool
}

var (
	forkerOnce sync.Once
	forkerDist string
)

// TestKilledRunTakesBackgroundChildren SIGKILLs beamctl run while its
// worker has children of its own running in the background, which get no
// parent-death signal, one of them in a session of its own: the worker's
// reaper kills both, and the pool's guard the worker's group should the
// reaper not.
func TestKilledRunTakesBackgroundChildren(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("finds processes in /proc")
	}
	dist := distOf(t, &forkerOnce, &forkerDist, "forker", "./testdata/forker")
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	cmd, tmp, out := startInTmp(t, "submit", dist, "--", "--tag="+tag)
	waitOutput(t, out.String, "forker: started background child")
	// A child that was started may not have executed its command yet,
	// the one its command line is found by.
	for start := time.Now(); len(processesRunning(t, "3600."+tag)) != 2; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d background children run, want 2:\n%s", len(processesRunning(t, "3600."+tag)), out.String())
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for len(processesRunning(t, "3600."+tag)) > 0 {
		if time.Now().After(deadline) {
			for _, p := range processesRunning(t, "3600."+tag) {
				p.Kill()
			}
			t.Fatal("the worker's background children outlived beamctl run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitClean(t, tmp)
}

// processesRunning finds processes whose command line holds s.
func processesRunning(t *testing.T, s string) []*os.Process {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []*os.Process
	for _, d := range dirs {
		cmdline, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		// A zombie has no command line; one that has is running.
		pid, _ := strconv.Atoi(filepath.Base(d))
		if p, err := os.FindProcess(pid); err == nil {
			found = append(found, p)
		}
	}
	return found
}

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/internal/syncbuf"
	"github.com/beamctl/beamctl/internal/testenv"
)

var (
	helperOnce sync.Once
	helperDir  string
	helperBin  string
	helperErr  error
)

// startWorkerHelper builds testdata/startworker where any user can run it.
func startWorkerHelper(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		// Outside the test's own (private) directories, so another user can
		// run it; TestMain removes it.
		dir, err := os.MkdirTemp("", "startworker-")
		if err != nil {
			helperErr = err
			return
		}
		helperDir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			helperErr = err
			return
		}
		helperBin = filepath.Join(dir, "startworker")
		out, err := exec.Command("go", "build", "-o", helperBin, "./testdata/startworker").CombinedOutput()
		if err != nil {
			helperErr = errors.New(string(out))
		}
	})
	if helperErr != nil {
		t.Fatal(helperErr)
	}
	return helperBin
}

// askForWorker calls StartWorker on pool as the user uid (-1: this one) and
// returns the helper's exit code and output.
func askForWorker(t *testing.T, uid int, pool, id, provision string) (int, string) {
	t.Helper()
	bin := startWorkerHelper(t)
	args := []string{bin, pool, id, provision}
	if uid >= 0 {
		u := strconv.Itoa(uid)
		args = append([]string{"setpriv", "--reuid=" + u, "--regid=" + u, "--clear-groups", "--"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%v: %v", args, err)
	return 0, ""
}

// TestPoolsServeOnlyTheirUser has another user of this machine (nobody)
// ask each kind of worker pool beamctl serves for a worker: PermissionDenied,
// and the provision service, the first thing a worker's boot calls, never
// hears of it. The pool's own user is served.
func TestPoolsServeOnlyTheirUser(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		testenv.Skip(t, testenv.Root, "needs root on Linux, to act as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		testenv.Skip(t, testenv.Tools, "needs setpriv (util-linux)")
	}
	const nobody = 65534
	for _, tt := range []struct {
		name string
		bin  func(*testing.T) string
		args []string
	}{
		{"worker-pool", beamctlBinary, []string{"worker-pool"}},
		{"boot --worker_pool", beamctlBinary, []string{"boot", "--worker_pool"}},
		{"beamctl-boot --worker_pool", bootBinary, []string{"--worker_pool"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &provisionRecorder{}
			provision := serveGRPC(t, func(s *grpc.Server) { fnpb.RegisterProvisionServiceServer(s, rec) })
			pool, addr := startPoolProcess(t, tt.bin(t), tt.args...)

			code, out := askForWorker(t, nobody, addr, "intruder", provision)
			if code != 3 || !strings.Contains(out, "not for user 65534") {
				t.Errorf("another user's StartWorker: exit %d, %q; want PermissionDenied", code, out)
			}
			if code, out := askForWorker(t, -1, addr, "owner", provision); code != 0 {
				t.Errorf("the owner's StartWorker: exit %d, %q; want accepted", code, out)
			}
			// The owner's worker reaches its provision service; the
			// intruder's never does.
			waitOutput(t, func() string {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return strings.Join(rec.ids, " ")
			}, "owner")
			rec.mu.Lock()
			if slices.Contains(rec.ids, "intruder") {
				t.Error("the pool provisioned a worker for another user")
			}
			rec.mu.Unlock()
			if !strings.Contains(pool.output(), "peer_uid=65534") {
				t.Errorf("the pool did not log the refused user:\n%s", pool.output())
			}
		})
	}
}

// TestPoolAddressBeyondLoopback checks that no pool listens beyond
// loopback unless told to.
func TestPoolAddressBeyondLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"worker-pool", "--address", "0.0.0.0:0"}, `--address host "0.0.0.0" is not a loopback address`},
		{[]string{"worker-pool", "--address", ":0"}, "--address has no host, which listens on every interface"},
		{[]string{"boot", "--worker_pool", "--address", "[::]:0"}, `--address host "::" is not a loopback address`},
		{[]string{"run", "../../examples/wordcount", "--endpoint", "localhost:1", "--environment", "loopback", "--loopback-address", "0.0.0.0"}, `--loopback-address "0.0.0.0" is not a loopback address: give a loopback address, or set --expose`},
		{[]string{"run", "../../examples/wordcount", "--endpoint", "localhost:1", "--environment", "loopback", "--loopback-address", ""}, "--loopback-address is empty"},
	} {
		r := beamctl(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
}

// TestRunPoolServesOnlyItsUser asks the pool behind beamctl run, found in
// its --verbose log, for a worker as another user.
func TestRunPoolServesOnlyItsUser(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		testenv.Skip(t, testenv.Root, "needs root on Linux, to act as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		testenv.Skip(t, testenv.Tools, "needs setpriv (util-linux)")
	}
	dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")
	_, out := startBeamctl(t, "slow: element", "submit", dist, "-v")
	_, rest, _ := strings.Cut(out.String(), `msg="worker pool serving" address=`)
	addr, _, _ := strings.Cut(rest, " ")
	if addr == "" {
		t.Fatalf("no pool address in the log:\n%s", out.String())
	}
	rec := &provisionRecorder{}
	provision := serveGRPC(t, func(s *grpc.Server) { fnpb.RegisterProvisionServiceServer(s, rec) })
	if code, msg := askForWorker(t, 65534, addr, "intruder", provision); code != 3 {
		t.Errorf("another user's StartWorker on run's pool: exit %d, %q; want PermissionDenied", code, msg)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.ids) != 0 {
		t.Errorf("run's pool provisioned %q for another user", rec.ids)
	}
}

// TestListenersOnLoopback reads the kernel's socket table, as ss shows it,
// for every socket beamctl listens on with default flags: run (its pool and
// the embedded runner), worker-pool and boot --worker_pool. Each is on a
// loopback address, or bound to the loopback device.
func TestListenersOnLoopback(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ss"); err != nil || runtime.GOOS != "linux" {
		testenv.Skip(t, testenv.Tools, "needs ss (iproute2) on Linux")
	}
	dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")
	for _, tc := range []struct {
		name  string
		ready string
		args  []string
		want  int // listeners at least
	}{
		{"run", "slow: element", []string{"submit", dist}, 2},
		{"worker-pool", "worker pool listening on", []string{"worker-pool", "--address", "127.0.0.1:0"}, 1},
		{"boot --worker_pool", "worker pool listening on", []string{"boot", "--worker_pool", "--address", "127.0.0.1:0"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, _ := startBeamctl(t, tc.ready, tc.args...)
			out, err := exec.Command("ss", "-Hltnp").Output()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, line := range strings.Split(string(out), "\n") {
				if !strings.Contains(line, "pid="+strconv.Itoa(pid)+",") {
					continue
				}
				n++
				f := strings.Fields(line)
				local := f[3]
				host := local[:strings.LastIndexByte(local, ':')]
				if !strings.HasSuffix(host, "%lo") && !strings.HasPrefix(host, "127.") && host != "[::1]" {
					t.Errorf("listens beyond loopback: %s", line)
				}
			}
			if n < tc.want {
				t.Errorf("found %d listeners of pid %d, want %d:\n%s", n, pid, tc.want, out)
			}
		})
	}
}

// startBeamctl starts the built beamctl with args and returns once its
// stderr says ready; the test's end kills it.
func startBeamctl(t *testing.T, ready string, args ...string) (int, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(beamctlBinary(t), args...)
	out := &syncbuf.Buffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitOutput(t, out.String, ready)
	return cmd.Process.Pid, out
}

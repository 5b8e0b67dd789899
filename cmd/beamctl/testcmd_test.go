package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/internal/testenv"
	"github.com/beamctl/beamctl/wrap"
)

// pipetests are packages whose tests run pipelines, as beamctl test is
// given them.
const pipetests = "./testdata/pipetests/"

// TestTestSeparateWorkers is the proof that beamctl test's workers are
// separate processes: a DoFn that reads a flag the test set passes under
// go test, whose DoFns run in the test process, and fails under beamctl
// test, whose workers never see the flag; carried in a field, the value
// reaches them.
func TestTestSeparateWorkers(t *testing.T) {
	t.Parallel()
	goTest := exec.Command("go", "test", "-count=1", pipetests+"flagread")
	if out, err := goTest.CombinedOutput(); err != nil {
		t.Fatalf("go test of the flag-reading DoFn failed, so the proof proves nothing: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		pkg       string
		code      int
		want, not []string
	}{
		{"flagread", exitFailure, []string{"--- FAIL: TestPrefix", "x-a", "FAIL\tgithub.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/flagread"}, []string{"ok  \t"}},
		{"flagfield", 0, []string{"ok  \tgithub.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/flagfield"}, []string{"FAIL"}},
		// A test that forces LOOPBACK keeps its DoFns in its own process.
		{"loopback", 0, []string{"ok  \tgithub.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/loopback"}, []string{"FAIL"}},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			t.Parallel()
			// The checks would refuse the flag read before a test ran.
			r := beamctlProcess(t, "test", "--vet=off", pipetests+tc.pkg)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			checkText(t, "stdout", r.stdout, tc.want, tc.not, 0)
		})
	}
}

// TestTestForeignTarget runs a DoFn that reports its architecture on an
// arm64 worker under qemu-user.
func TestTestForeignTarget(t *testing.T) {
	t.Parallel()
	if _, err := wrap.Emulator("linux", "arm64"); err != nil {
		testenv.Skip(t, testenv.Qemu, "%v", err)
	}
	for _, tc := range []struct {
		want string
		code int
		out  string
	}{
		{"arm64", 0, "ok  \tgithub.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/goarch"},
		{"amd64", exitFailure, "--- FAIL: TestWorkerArch"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			r := beamctlProcess(t, "test", pipetests+"goarch", "--target", "linux/arm64", "--", "-want="+tc.want)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.out) {
				t.Errorf("exit %d, want %d and %q\n%s%s", r.code, tc.code, tc.out, r.stdout, r.stderr)
			}
		})
	}
}

// TestTestJSON checks --output json: go test -json's events, each with the
// target it ran for.
func TestTestJSON(t *testing.T) {
	t.Parallel()
	r := beamctlProcess(t, "test", "--vet=off", "--output", "json", pipetests+"flagread", pipetests+"flagfield")
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailure, r.stderr)
	}
	actions := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct{ Action, Package, Test, Target string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a test2json event: %q: %v", sc.Text(), err)
		}
		if ev.Target != "linux/amd64" {
			t.Errorf("event without its target: %s", sc.Text())
		}
		if ev.Test != "" && (ev.Action == "pass" || ev.Action == "fail") {
			actions[filepath.Base(ev.Package)+"."+ev.Test] = ev.Action
		}
	}
	if actions["flagread.TestPrefix"] != "fail" || actions["flagfield.TestPrefix"] != "pass" {
		t.Errorf("test results %v, want flagread failed and flagfield passed", actions)
	}
}

// TestTestWithoutPtestMain checks that a package whose test binary cannot
// be a worker runs as go test runs it, with a line saying so and the fix.
func TestTestWithoutPtestMain(t *testing.T) {
	t.Parallel()
	r := beamctlProcess(t, "test", pipetests+"noptest")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkText(t, "stderr", r.stderr, []string{"pipetests/noptest: its TestMain does not call ptest.Main", "func TestMain(m *testing.M) { ptest.Main(m) }"}, nil, 0)
	if n := strings.Count(r.stderr, "\n"); n != 1 {
		t.Errorf("stderr has %d lines, want the one notice:\n%s", n, r.stderr)
	}
}

// TestTestRace checks that --race reaches go test: a data race the tests
// pass with fails them under the race detector.
func TestTestRace(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("gcc"); err != nil {
		testenv.Skip(t, testenv.Tools, "the race detector needs cgo's C compiler: %v", err)
	}
	for _, tc := range []struct {
		race bool
		code int
		want string
	}{
		{false, 0, "ok  \tgithub.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/racy"},
		{true, exitFailure, "WARNING: DATA RACE"},
	} {
		args := []string{"test", pipetests + "racy", "--count", "1"}
		if tc.race {
			args = append(args, "--race")
		}
		r := beamctlProcess(t, args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("race %v: exit %d, want %d and %q\n%s%s", tc.race, r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
	}
}

// TestTestRefusals checks what beamctl test refuses before running a test.
func TestTestRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"checks find the flag read", []string{pipetests + "flagread"}, exitFailure, []string{"1 mistake", "prefix", "(flagread)", "--vet=off"}},
		{"race on a foreign target", []string{pipetests + "goarch", "--race", "--target", "linux/arm64"}, exitUsage, []string{"race detector runs only on the host's platform", "leave out --race"}},
		{"negative count", []string{pipetests + "goarch", "--count", "-1"}, exitUsage, []string{"--count -1 is negative"}},
		{"no such package", []string{"./testdata/pipetests/nosuch"}, exitUsage, []string{"nosuch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := beamctlProcess(t, append([]string{"test"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			checkText(t, "stderr", r.stderr, tc.want, []string{"goroutine ", "--- FAIL"}, 2000)
		})
	}
}

// TestTestSnippets runs Beam's own snippet tests, copied into a module of
// their own, with separate workers, for the host and for linux/arm64. The
// snippets hold fragments for the documentation that the checks rightly
// refuse (DoFns that nothing registers) and that the tests never run.
func TestTestSnippets(t *testing.T) {
	t.Parallel()
	targets := []string{"host"}
	if _, err := wrap.Emulator("linux", "arm64"); err == nil {
		targets = append(targets, "linux/arm64")
	} else {
		testenv.Skip(t, testenv.Qemu, "%v", err)
	}
	for _, target := range targets {
		t.Run(strings.ReplaceAll(target, "/", "-"), func(t *testing.T) {
			t.Parallel()
			// A directory in a module of its own is tested from that module.
			r := beamctlProcess(t, "test", "--vet=off", "--target", target, "-v", "../../examples/snippets")
			out := r.stdout
			if r.code != 0 || !strings.Contains(out, "ok  \texample.com/snippets") {
				t.Fatalf("exit %d\n%s%s", r.code, out, r.stderr)
			}
			if n := strings.Count(out, "--- PASS: "); n < 10 {
				t.Errorf("%d tests passed, want the snippets' tests:\n%s", n, out)
			}
		})
	}
}

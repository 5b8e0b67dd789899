package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/beamctl/beamctl/build"
)

const wordcountInput = "../../examples/wordcount/testdata/input.txt"

// countWords counts the input independently of the pipeline, the way its
// doc says it counts.
func countWords(t *testing.T, path string) []string {
	t.Helper()
	return countMatches(t, path, `[\p{L}\p{N}']+`, strings.ToLower)
}

// countMatches counts path's words, the matches of expr as norm words
// them, one "word: count" line each, sorted.
func countMatches(t *testing.T, path, expr string, norm func(string) string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, w := range regexp.MustCompile(expr).FindAllString(string(data), -1) {
		counts[norm(w)]++
	}
	var lines []string
	for w, n := range counts {
		lines = append(lines, fmt.Sprintf("%s: %d", w, n))
	}
	sort.Strings(lines)
	return lines
}

func readSorted(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the pipeline wrote no output: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	sort.Strings(lines)
	return lines
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRunWordcount runs wordcount on the embedded runner with a native
// worker and with a linux/arm64 worker under qemu-user: both must count
// what an independent count of the input says.
func TestRunWordcount(t *testing.T) {
	t.Parallel()
	want := countWords(t, wordcountInput)
	targets := []string{"host"}
	if runtime.GOOS == "linux" && runtime.GOARCH != "arm64" {
		targets = append(targets, "linux/arm64")
	}
	for _, target := range targets {
		t.Run(strings.ReplaceAll(target, "/", "-"), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "counts.txt")
			dist := t.TempDir()
			r := beamctl(t, "run", "../../examples/wordcount", "--target", target, "--out", dist, "--output", "json",
				"--", "--input="+abs(t, wordcountInput), "--output="+out)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			// A worker for this machine is the launcher itself: one binary to
			// link. Another platform's worker is a binary of its own.
			m, err := build.ReadManifest(dist)
			if err != nil {
				t.Fatal(err)
			}
			launcher, _ := m.Launcher(build.HostPlatform())
			worker := m.Workers()[0]
			if same := launcher.File == worker.File; same != (target == "host") || !m.Flags.Local {
				t.Errorf("run built launcher %s and worker %s (local %v); want one binary exactly when the worker is for this machine", launcher.File, worker.File, m.Flags.Local)
			}
			got := readSorted(t, out)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("counts differ from an independent count:\n got %v\nwant %v", got, want)
			}
			// stdout carries JSON only, one object per line; the last sums
			// the job up, metrics included.
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Errorf("stdout line is not JSON: %q", l)
				}
			}
			var res jobResult
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
				t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
			}
			if res.State != "DONE" || res.JobID == "" {
				t.Errorf("result %+v", res)
			}
			found := false
			for _, m := range res.Metrics {
				if m.Name == "lines" && m.Counter == 20 {
					found = true
				}
			}
			if !found {
				t.Errorf("metrics lack wordcount/lines = 20: %+v", res.Metrics)
			}
		})
	}
}

// TestRunKeepsDist runs wordcount from a directory that holds what beamctl
// build published to dist: without --out, run builds into beamctl's cache
// and leaves the directory as it was.
func TestRunKeepsDist(t *testing.T) {
	pkg, input := abs(t, "../../examples/wordcount"), abs(t, wordcountInput)
	want := countWords(t, wordcountInput)
	wd := t.TempDir()
	dist := filepath.Join(wd, "dist")
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	const release = `{"release": true}`
	if err := os.WriteFile(filepath.Join(dist, "manifest.json"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	out := filepath.Join(t.TempDir(), "counts.txt")
	if r := beamctl(t, "run", pkg, "--target", "host", "--", "--input="+input, "--output="+out); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if got := readSorted(t, out); !slices.Equal(got, want) {
		t.Errorf("counts differ: %v", got)
	}
	entries, _ := os.ReadDir(dist)
	b, _ := os.ReadFile(filepath.Join(dist, "manifest.json"))
	if len(entries) != 1 || string(b) != release {
		t.Errorf("run changed dist: %d entries, manifest %s", len(entries), b)
	}
	if entries, _ := os.ReadDir(wd); len(entries) != 1 {
		t.Errorf("run wrote into the working directory: %v", entries)
	}
}

// TestRunOtherModule runs a pipeline that lives in a module of its own.
func TestRunOtherModule(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "stats.txt")
	r := beamctl(t, "run", "../../examples/linestats", "--target", "host", "--out", t.TempDir(),
		"--", "--input="+abs(t, wordcountInput), "--output="+out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(wordcountInput)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	bytes := 0
	for _, l := range lines {
		bytes += len(l)
	}
	want := []string{fmt.Sprintf("bytes: %d", bytes), fmt.Sprintf("lines: %d", len(lines)), fmt.Sprintf("words: %d", len(strings.Fields(string(data))))}
	if got := readSorted(t, out); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stats = %v, want %v", got, want)
	}
}

// unregisteredPkg is a pipeline whose ParDo function no init registers.
const unregisteredPkg = "../../vet/testdata/bad/unregistered"

// TestRunFailures runs pipelines that fail: each failure is told in a few
// lines (max bytes of stderr, build log included), with the runner's whole
// message only under --verbose.
func TestRunFailures(t *testing.T) {
	t.Parallel()
	// The checks would refuse these pipelines before a worker ran.
	unregistered := []string{"--vet=off", unregisteredPkg, "--", "--output=" + filepath.Join(t.TempDir(), "out")}
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		want, not []string
		max       int
	}{
		{"DoFn panics", []string{"../../submit/testdata/panicky"}, 1,
			[]string{"panic in main.(*explodeFn).ProcessElement at github.com/beamctl/beamctl/submit/testdata/panicky/main.go:31", "panicky: element 2 is not welcome", "--verbose shows"},
			[]string{"goroutine ", "callNoPanic"}, 2500},
		{"function not registered", unregistered, 1,
			[]string{"in transform main.shout: main.shout not found. Register DoFns and functions with the beam/register package\n",
				"fix: register it in an init function", "register.Function1x1(shout)", "github.com/apache/beam/sdks/v2/go/pkg/beam/register"},
			[]string{"invalid bundle desc", "the the", "more lines"}, 2500},
		{"function not registered, verbose", append([]string{"-v"}, unregistered...), 1,
			[]string{"invalid bundle desc: stage-", "state_api_service_descriptor", "decoding userfn", "register.Function1x1(shout)"},
			[]string{"--verbose shows"}, 0},
		{"function literal", []string{"--vet=off", "./testdata/mistakes", "--", "--mistake=closure"}, 1,
			[]string{"in transform Upper/main.main.func1: main.main.func1 not found", "function literal", "named top-level function"},
			[]string{"invalid bundle desc"}, 2500},
		{"launcher rejects its arguments", []string{"../../examples/wordcount", "--", "--no_such_flag"}, 1,
			[]string{"submitted no pipeline", "no_such_flag"}, nil, 0},
		{"program never submits", []string{"./testdata/nosubmit"}, 1,
			[]string{"submitted no pipeline to beamctl", "forgot to run it"}, nil, 0},
		{"launcher hangs", []string{"./testdata/hang", "--capture-timeout", "3s"}, 1,
			[]string{"3s", "hang: waiting forever"}, nil, 0},
		{"worker dies before it connects", []string{"./testdata/dyingworker"}, 1,
			[]string{"a worker failed", "dyingworker: refusing to work"}, nil, 0},
		{"output not writable", []string{"../../examples/wordcount", "--", "--input=" + abs(t, wordcountInput), "--output=/proc/beamctl/counts.txt"}, 1,
			[]string{"in transform textio.writeFileFn: mkdir /proc/beamctl: no such file or directory"}, nil, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--target", "host", "--out", t.TempDir()}, tc.args...)
			r := beamctl(t, args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			checkText(t, "stderr", r.stderr, tc.want, tc.not, tc.max)
			if strings.Contains(r.stderr, "goroutine ") && !slices.Contains(tc.args, "-v") {
				t.Errorf("stderr has a stack trace:\n%s", r.stderr)
			}
		})
	}
}

// TestRunFailureJSON checks the result line of a failed job: the cause
// beside the runner's whole message.
func TestRunFailureJSON(t *testing.T) {
	t.Parallel()
	r := beamctl(t, "run", "--vet=off", unregisteredPkg, "--target", "host", "--out", t.TempDir(), "--output", "json",
		"--", "--output="+filepath.Join(t.TempDir(), "out"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res jobResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	c := res.Cause
	if res.State != "FAILED" || c == nil || c.Kind != "unregistered" || c.Function != "main.shout" || c.Transform != "main.shout" ||
		!strings.Contains(c.Reason, "not found") || !strings.Contains(c.Fix, "register.Function1x1(shout)") {
		t.Errorf("result %+v, cause %+v", res, c)
	}
	if !strings.Contains(res.Error, "invalid bundle desc") || !strings.Contains(res.Error, "state_api_service_descriptor") {
		t.Errorf("error is not the runner's whole message: %q", res.Error)
	}
}

// TestRunForeignTargetWithoutQemu checks that a worker this machine cannot
// run is refused before anything is built.
func TestRunForeignTargetWithoutQemu(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH == "arm64" {
		t.Skip("needs a non-arm64 Linux host")
	}
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err == nil {
		t.Skip("a binfmt_misc handler runs arm64 binaries here without qemu on PATH")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir()
	os.Symlink(goBin, filepath.Join(path, "go"))
	for _, args := range [][]string{
		{"run", "../../examples/wordcount", "--target", "linux/arm64"},
		{"test", pipetests + "goarch", "--target", "linux/arm64"},
	} {
		out := t.TempDir()
		if args[0] == "run" {
			args = append(args, "--out", out)
		}
		cmd := exec.Command(beamctlBinary(t), args...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		stderr, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(stderr), "qemu-user-static") || strings.Count(string(stderr), "\n") > 2 {
			t.Errorf("%s: %v:\n%s", args[0], err, stderr)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%s built before refusing the target: %v", args[0], entries)
		}
	}
}

// TestRunInterrupted sends SIGINT while a slow job runs: the job is
// cancelled, beamctl exits 130 and no process it started is left.
func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmd := exec.Command(beamctlBinary(t), "run", "./testdata/slow", "--target", "host", "--out", out)
	pipe := startStderr(t, cmd)
	var seen strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "slow: element") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130\n%s", err, seen.String())
	}
	if !strings.Contains(seen.String(), "CANCELLED") {
		t.Errorf("the job was not seen cancelled:\n%s", seen.String())
	}
	if procs := processesMentioning(out); len(procs) > 0 {
		t.Errorf("processes left after beamctl exited: %v", procs)
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/go-delve/delve/service/rpc2"
	"golang.org/x/mod/modfile"

	"github.com/beamctl/beamctl/internal/syncbuf"
	"github.com/beamctl/beamctl/wrap"
)

var dlvCmd builtCommand

// dlvBinary builds the Delve that go.mod pins as a tool of this module,
// once per test binary: a bare machine has none.
func dlvBinary(t *testing.T) string { return dlvCmd.build(t, "dlv", wrap.DelvePackage) }

// TestDebugDelvePinned keeps the install line beamctl prints at the version
// the tests run.
func TestDebugDelvePinned(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/go-delve/delve" {
			if r.Mod.Version != wrap.DelveVersion {
				t.Errorf("go.mod pins Delve %s, but beamctl tells users to install %s", r.Mod.Version, wrap.DelveVersion)
			}
			return
		}
	}
	t.Error("go.mod does not pin Delve")
}

// freePorts returns a range of n ports that were free a moment ago, as
// --debug-addr takes it.
func freePorts(t *testing.T, n int) (string, string) {
	t.Helper()
	for range 20 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := lis.Addr().(*net.TCPAddr).Port
		lis.Close()
		if port+n <= 65535 {
			first := "127.0.0.1:" + strconv.Itoa(port)
			return first, first + "-" + strconv.Itoa(port+n-1)
		}
	}
	t.Fatal("no free port range")
	return "", ""
}

// watchLine is what the tests read of a run --watch result line.
type watchLine struct {
	Run        int      `json:"run"`
	State      string   `json:"state"`
	Error      string   `json:"error"`
	Changed    []string `json:"changed"`
	Superseded string   `json:"superseded"`
}

// debugRun is beamctl run --debug --output json, as a process.
type debugRun struct {
	cmd    *exec.Cmd
	tmp    string
	out    string // the job's output file
	stderr syncbuf.Buffer
	events chan debugEvent
	// runs are run --watch's result lines.
	runs chan watchLine
	// transforms are those the last transforms event listed.
	transforms []string
	exited     chan struct{}
	// bound is how long the run may take; 0 means 3 minutes.
	bound time.Duration
	err   error
}

// startDebugged is startDebugRun with the debuggers on free ports from
// the address it returns.
func startDebugged(t *testing.T, args ...string) (*debugRun, string) {
	t.Helper()
	addr, _ := freePorts(t, 4)
	return startDebugRun(t, append([]string{"--debug-addr", addr}, args...)...), addr
}

// startDebugRun runs wordcount with --debug and the given flags. The first
// run of a test binary builds wordcount for debuggers.
func startDebugRun(t *testing.T, args ...string) *debugRun {
	t.Helper()
	out := filepath.Join(t.TempDir(), "counts.txt")
	args = append(append([]string{"run", "../../examples/wordcount", "--target", "host", "--out", t.TempDir(),
		"--debug", "--dlv", dlvBinary(t), "--output", "json"}, args...),
		"--", "--input="+abs(t, wordcountInput), "--output="+out)
	return startDebugProcess(t, "", out, args...)
}

// startDebugProcess runs beamctl with args in dir ("": this package's);
// out is the job's output file.
func startDebugProcess(t *testing.T, dir, out string, args ...string) *debugRun {
	t.Helper()
	r := &debugRun{tmp: t.TempDir(), out: out, events: make(chan debugEvent, 16), runs: make(chan watchLine, 16), exited: make(chan struct{})}
	r.cmd = exec.Command(beamctlBinary(t), args...)
	r.cmd.Dir = dir
	r.cmd.Env = append(os.Environ(), "TMPDIR="+r.tmp)
	r.cmd.Stderr = &r.stderr
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var read sync.WaitGroup
	read.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e debugEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event != "" {
				r.events <- e
			}
			var l watchLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Run > 0 {
				r.runs <- l
			}
		}
	})
	go func() {
		read.Wait()
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
	})
	return r
}

// debugger waits for the next program under Delve and connects to it.
func (r *debugRun) debugger(t *testing.T, role string) (*rpc2.RPCClient, debugEvent) {
	t.Helper()
	e := r.waitDebugger(t, role)
	return connectDelve(t, r.stderr.String, e.Address), e
}

// waitDebugger waits for the next program under Delve.
func (r *debugRun) waitDebugger(t *testing.T, role string) debugEvent {
	t.Helper()
	// The first run builds wordcount without optimisation: minutes.
	deadline := time.After(10 * time.Minute)
	for {
		select {
		case e := <-r.events:
			if e.Event == "transforms" {
				r.transforms = e.Transforms
			}
			if e.Event != "debugger" {
				continue
			}
			if e.Role != role {
				t.Fatalf("debugger for %s, want %s", e.Role, role)
			}
			return e
		case <-r.exited:
			t.Fatalf("beamctl exited (%v) before a %s ran under Delve:\n%s", r.err, role, r.stderr.String())
		case <-deadline:
			t.Fatalf("no %s under Delve after 10 minutes:\n%s", role, r.stderr.String())
		}
	}
}

// connectDelve connects to Delve at addr once it says it listens.
func connectDelve(t *testing.T, output func() string, addr string) *rpc2.RPCClient {
	t.Helper()
	return connectNthDelve(t, output, addr, 1)
}

// connectNthDelve connects to the nth Delve to listen at addr, once it
// says it does.
func connectNthDelve(t *testing.T, output func() string, addr string, n int) *rpc2.RPCClient {
	t.Helper()
	waitOutputN(t, output, "API server listening at: "+addr, n)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := rpc2.NewClientFromConn(conn)
	t.Cleanup(func() { conn.Close() })
	return c
}

// wait waits for beamctl to exit and returns its exit code.
func (r *debugRun) wait(t *testing.T) int {
	t.Helper()
	bound := r.bound
	if bound == 0 {
		bound = 3 * time.Minute
	}
	select {
	case <-r.exited:
	case <-time.After(bound):
		t.Fatalf("beamctl still runs after %v:\n%s", bound, r.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case r.err == nil:
		return 0
	case errors.As(r.err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(r.err)
	return -1
}

// checkDone checks that the job ended DONE with wordcount's right counts.
func (r *debugRun) checkDone(t *testing.T) {
	t.Helper()
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	if got, want := readSorted(t, r.out), countWords(t, wordcountInput); !slices.Equal(got, want) {
		t.Errorf("counts differ:\n got %v\nwant %v", got, want)
	}
	waitClean(t, r.tmp)
}

// leave clears bp, if any, and disconnects, which continues the program;
// the job must then end DONE with the right counts.
func (r *debugRun) leave(t *testing.T, c *rpc2.RPCClient, bp *api.Breakpoint) {
	t.Helper()
	if bp != nil {
		if _, err := c.ClearBreakpoint(bp.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Disconnect(true); err != nil {
		t.Fatal(err)
	}
	r.checkDone(t)
}

// interrupt sends SIGINT: beamctl must exit 130, and neither Delve (whose
// command line names its address addr) nor the worker (whose names its
// directory in TMPDIR) may run on.
func (r *debugRun) interrupt(t *testing.T, addr string) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != exitInterrupted {
		t.Errorf("exit %d after SIGINT, want %d\n%s", code, exitInterrupted, r.stderr.String())
	}
	if procs := processesMentioning("--listen=" + addr); len(procs) > 0 {
		t.Errorf("Delve still runs: %q", procs)
	}
	waitClean(t, r.tmp)
}

// sourceLine is the 1-based line of path that contains text.
func sourceLine(t *testing.T, path, text string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", path, text)
	return 0
}

// breakAt sets a breakpoint on the line of wordcount's main.go that holds
// text.
func breakAt(t *testing.T, c *rpc2.RPCClient, text string) *api.Breakpoint {
	t.Helper()
	return breakIn(t, c, "../../examples/wordcount/main.go", "wordcount/main.go", text)
}

// breakIn sets a breakpoint on the line of the source file at path that
// holds text; name ends the file's name in the binary.
func breakIn(t *testing.T, c *rpc2.RPCClient, path, name, text string) *api.Breakpoint {
	t.Helper()
	line := sourceLine(t, path, text)
	locs, _, err := c.FindLocation(api.EvalScope{GoroutineID: -1}, name+":"+strconv.Itoa(line), false, nil)
	if err != nil || len(locs) == 0 {
		t.Fatalf("find %s:%d: %v", name, line, err)
	}
	bp, err := c.CreateBreakpoint(&api.Breakpoint{File: locs[0].File, Line: line})
	if err != nil {
		t.Fatalf("break at %s:%d: %v", name, line, err)
	}
	return bp
}

// continueTo continues and expects bp to be hit.
func continueTo(t *testing.T, c *rpc2.RPCClient, bp *api.Breakpoint) *api.DebuggerState {
	t.Helper()
	state := <-c.Continue()
	if state == nil || state.Err != nil {
		t.Fatalf("continue: %+v", state)
	}
	if th := state.CurrentThread; th == nil || th.Breakpoint == nil || th.Breakpoint.ID != bp.ID {
		t.Fatalf("stopped at %+v, not at breakpoint %d (%s:%d)", state.CurrentThread, bp.ID, bp.File, bp.Line)
	}
	return state
}

// local reads a string variable where the program stopped.
func local(t *testing.T, c *rpc2.RPCClient, state *api.DebuggerState, name string) string {
	t.Helper()
	v, err := c.EvalVariable(api.EvalScope{GoroutineID: state.SelectedGoroutine.ID}, name, api.LoadConfig{MaxStringLen: 1 << 10})
	if err != nil {
		t.Fatalf("eval %s: %v", name, err)
	}
	return v.Value
}

// inputLines are wordcount's input lines.
func inputLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(wordcountInput)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}

// TestDebugRun debugs wordcount's worker with a real Delve client, as a
// user of dlv connect or an editor would: the worker waits, a breakpoint in
// the DoFn stops it with the line it splits, and the job ends DONE with the
// right counts, however long the worker waited or stayed paused.
func TestDebugRun(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Delve's native backend; qemu and processes found in /proc")
	}
	dlvBinary(t)
	// Build once for all the subtests, which run at the same time.
	warm := startDebugRun(t, "--debug-wait=false", "--debug-addr", must(freePorts(t, 4)))
	// Its debug build compiles the Beam SDK without optimisation, which on
	// a cold cache takes minutes.
	warm.bound = 15 * time.Minute
	warm.checkDone(t)

	t.Run("breakpoint in a DoFn", func(t *testing.T) {
		t.Parallel()
		r, _ := startDebugged(t)
		c, e := r.debugger(t, "worker")
		if !e.Wait || e.Connect != "dlv connect "+e.Address || e.VSCode == nil || e.VSCode.Port == 0 || e.VSCode.Mode != "remote" {
			t.Errorf("debugger event %+v", e)
		}
		if !slices.Contains(r.transforms, "CountWords/main.extractFn") {
			t.Errorf("the DoFn transforms listed are %q, want CountWords/main.extractFn among them", r.transforms)
		}
		bp := breakAt(t, c, "emit(strings.ToLower(w))")
		state := continueTo(t, c, bp)
		line, word := local(t, c, state, "line"), local(t, c, state, "w")
		if !slices.Contains(inputLines(t), line) || !strings.Contains(strings.ToLower(line), strings.ToLower(word)) || word == "" {
			t.Errorf("stopped with line %q and word %q, want an input line and a word of it", line, word)
		}
		r.leave(t, c, bp)
	})

	t.Run("attached after prism's connection timeout", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits more than a minute")
		}
		t.Parallel()
		r, addr := startDebugged(t)
		r.waitDebugger(t, "worker")
		// prism fails a job whose worker has not connected within a minute;
		// a worker waiting for its debugger must not count as not connected.
		time.Sleep(65 * time.Second)
		r.leave(t, connectDelve(t, r.stderr.String, addr), nil)
	})

	t.Run("paused 90s at a breakpoint", func(t *testing.T) {
		if testing.Short() {
			t.Skip("pauses for 90 seconds")
		}
		t.Parallel()
		r, _ := startDebugged(t)
		c, _ := r.debugger(t, "worker")
		bp := breakAt(t, c, "emit(strings.ToLower(w))")
		continueTo(t, c, bp)
		// What is tested is that nothing gives up on a paused worker.
		time.Sleep(90 * time.Second)
		r.leave(t, c, bp)
	})

	t.Run("interrupted while paused", func(t *testing.T) {
		t.Parallel()
		r, addr := startDebugged(t)
		c, _ := r.debugger(t, "worker")
		continueTo(t, c, breakAt(t, c, "emit(strings.ToLower(w))"))
		r.interrupt(t, addr)
	})

	t.Run("launcher", func(t *testing.T) {
		t.Parallel()
		r, _ := startDebugged(t, "--debug-launcher", "--debug-wait=false")
		c, _ := r.debugger(t, "launcher")
		bp := breakAt(t, c, "p, s := beam.NewPipelineWithRoot()")
		continueTo(t, c, bp)
		// Stopped in main, before the pipeline exists: nothing captured yet.
		if strings.Contains(r.stderr.String(), "submitted to the embedded runner") || len(r.events) > 0 {
			t.Errorf("the pipeline was captured while the launcher was stopped in main:\n%s", r.stderr.String())
		}
		r.leave(t, c, bp)
	})
}

func must(first, _ string) string { return first }

// TestDebugUsage runs bad debug requests: each fails at once, before
// anything is built, with exit 2 and one line saying what to do.
func TestDebugUsage(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	noDlv := t.TempDir()
	if err := os.Symlink(goBin, filepath.Join(noDlv, "go")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		// path, if set, is the whole PATH.
		path string
		want string
	}{
		{"Delve missing", []string{"run", "../../examples/wordcount", "--debug"}, noDlv, wrap.DelveInstall},
		{"Delve missing for the pool", []string{"worker-pool", "--debug", "--address", "127.0.0.1:0"}, noDlv, wrap.DelveInstall},
		{"Delve not at --dlv", []string{"run", "../../examples/wordcount", "--debug", "--dlv", "/no/such/dlv"}, "", "--dlv /no/such/dlv"},
		{"foreign target", []string{"run", "../../examples/wordcount", "--debug", "--target", "linux/arm64"}, "", "--target host"},
		{"remote workers", []string{"run", "../../examples/wordcount", "--debug", "--endpoint", "127.0.0.1:1", "--environment", "docker"}, "", "--environment docker"},
		{"launcher without --debug", []string{"run", "../../examples/wordcount", "--debug-launcher"}, "", "--debug-launcher needs --debug"},
		{"wait without --debug", []string{"run", "../../examples/wordcount", "--debug-wait=false"}, "", "--debug-wait needs --debug"},
		{"debugger beyond loopback", []string{"run", "../../examples/wordcount", "--debug", "--debug-addr", "0.0.0.0:2345"}, "", "--expose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "foreign target" && runtime.GOARCH == "arm64" {
				t.Skip("arm64 is this machine's own")
			}
			out := t.TempDir()
			args := append(slices.Clone(tc.args), "--out", out)
			if tc.args[0] == "worker-pool" {
				args = tc.args
			}
			if tc.path == "" && !slices.Contains(args, "--dlv") {
				args = append(args, "--dlv", dlvBinary(t))
			}
			cmd := exec.Command(beamctlBinary(t), args...)
			if tc.path != "" {
				cmd.Env = append(os.Environ(), "PATH="+tc.path)
			}
			stderr, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Errorf("exit %v, want %d:\n%s", err, exitUsage, stderr)
			}
			msg := strings.TrimSpace(string(stderr))
			if !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
				t.Errorf("want one line with %q, got:\n%s", tc.want, msg)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("beamctl built before refusing: %v", entries)
			}
		})
	}
}

// TestDebugWorkerPool runs wordcount on upstream prism with its workers in
// a standalone pool under Delve: waiting for a debugger, which attaches on
// the first port of the pool's range and lets the worker go.
func TestDebugWorkerPool(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Delve's native backend")
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"worker-pool", []string{"worker-pool"}},
		{"boot --worker_pool", []string{"boot", "--worker_pool"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prism := startPrism(t)
			first, ports := freePorts(t, 4)
			pool, addr := startPoolProcess(t, beamctlBinary(t), append(tt.args, "--debug", "--debug-addr", ports, "--dlv", dlvBinary(t))...)
			attached := attachOnce(pool, first, nil)
			submitWordcount(t, prism, "--environment", "external", "--environment-config", addr)
			if err := <-attached; err != nil {
				t.Error(err)
			}
			pool.stop(t, syscall.SIGTERM)
			if !strings.Contains(pool.output(), "dlv connect "+first) {
				t.Errorf("the pool did not say how to attach:\n%s", pool.output())
			}
		})
	}
}

// attachOnce attaches a Delve client to the first worker a pool debugs at
// addr, runs look (if set) and leaves, so the waiting worker runs on; the
// channel gives the outcome.
func attachOnce(pool *poolProcess, addr string, look func(*rpc2.RPCClient) error) <-chan error {
	attached := make(chan error, 1)
	go func() {
		if !pool.waitFor("API server listening at: "+addr, 3*time.Minute) {
			// Where Delve waits, should it hang before it listens.
			attached <- fmt.Errorf("no Delve listened on %s; Delve's processes: %q", addr, processStates("dlv"))
			return
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			attached <- err
			return
		}
		c := rpc2.NewClientFromConn(conn)
		if look != nil {
			if err := look(c); err != nil {
				c.Disconnect(true)
				attached <- err
				return
			}
		}
		attached <- c.Disconnect(true)
	}()
	return attached
}

// processStates lists the processes whose command line contains s, each
// with its state and the kernel function it sleeps in.
func processStates(s string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, cmdline := range cmdlines {
		data, err := os.ReadFile(cmdline)
		if err != nil || !bytes.Contains(data, []byte(s)) {
			continue
		}
		dir := filepath.Dir(cmdline)
		stat, _ := os.ReadFile(filepath.Join(dir, "stat"))
		wchan, _ := os.ReadFile(filepath.Join(dir, "wchan"))
		state := ""
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+3 < len(stat) {
			state = string(stat[i+2 : i+3])
		}
		out = append(out, fmt.Sprintf("%s [%s %s] %s", filepath.Base(dir), state, wchan, bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
	}
	return out
}

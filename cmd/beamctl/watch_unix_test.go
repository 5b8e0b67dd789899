//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/syncbuf"
)

// TestRunWatch edits a pipeline under run --watch, on the embedded runner,
// with real files and fsnotify: each edit gives a run whose output has it;
// a file the pipeline does not depend on and the output the pipeline
// writes into its module trigger nothing; a save that does not compile
// shows the compiler's error, and the loop goes on; a save while a job
// runs cancels it; SIGINT exits 130 and leaves no process and no
// temporary file.
func TestRunWatch(t *testing.T) {
	t.Parallel()
	w := newWatched(t)
	mod, main, src := w.mod, w.main, w.src
	save := func(mark, delay string) { t.Helper(); w.save(t, mark, delay) }
	tmp := t.TempDir()
	out := filepath.Join(mod, "out.txt")
	cmd := exec.Command(beamctlBinary(t), "run", "--watch", ".", "--target", "host", "--output", "json", "--", "--output="+out)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan watchLine)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			var l watchLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Run > 0 {
				lines <- l
			}
		}
	}()
	next := func(want int) watchLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("beamctl ended before run %d:\n%s", want, stderr.String())
			}
			if l.Run != want {
				t.Fatalf("run %d came, want run %d: %+v\n%s", l.Run, want, l, stderr.String())
			}
			return l
		case <-time.After(5 * time.Minute):
			t.Fatalf("no run %d within 5m:\n%s", want, stderr.String())
		}
		return watchLine{}
	}
	counted := func(l watchLine, mark string) {
		t.Helper()
		if l.State != "DONE" || l.Error != "" {
			t.Fatalf("run %d: %+v\n%s", l.Run, l, stderr.String())
		}
		w.counted(t, out, mark)
	}
	onlyMain := func(l watchLine) {
		t.Helper()
		if !slices.Equal(l.Changed, []string{main}) {
			t.Errorf("run %d was started by %q, want main.go alone", l.Run, l.Changed)
		}
	}

	counted(next(1), "v1")
	// A file no package reads, written just before a save: had it
	// counted, the change would name it too. The output, rewritten by
	// each run, would start runs of its own.
	if err := os.WriteFile(filepath.Join(mod, "notes.txt"), []byte("todo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	save("v2", "0")
	l := next(2)
	onlyMain(l)
	counted(l, "v2")
	save("v3", "0")
	l = next(3)
	onlyMain(l)
	counted(l, "v3")

	if err := os.WriteFile(main, append(slices.Clone(src), "func broken() {\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if l := next(4); l.State != "" || !strings.Contains(l.Error, "main.go:") || !strings.Contains(l.Error, "syntax error") {
		t.Errorf("a save that does not compile gave %+v, want the compiler's error naming main.go", l)
	}

	// A save while the job runs cancels it for the next run.
	save("v4", "time.Hour")
	for deadline := time.Now().Add(5 * time.Minute); !strings.Contains(stderr.String(), "watched: sleeping"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow job did not start within 5m:\n%s", stderr.String())
		}
	}
	save("v5", "0")
	if l := next(5); l.State != "CANCELLED" || !strings.Contains(l.Superseded, "main.go changed") {
		t.Errorf("a save while the job ran gave %+v, want it cancelled for the next run", l)
	}
	counted(next(6), "v5")

	cmd.Process.Signal(syscall.SIGINT)
	for range lines {
	}
	err = cmd.Wait()
	exited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v after SIGINT, want 130\n%s", err, stderr.String())
	}
	if procs := append(processesMentioning(mod), processesMentioning(tmp)...); len(procs) > 0 {
		t.Errorf("processes left after beamctl exited: %v", procs)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("temporary files left: %v", names)
	}
}

// TestRunWatchDebug reruns a pipeline under run --watch --debug: after a
// save, the new worker waits under Delve on the address the first one had,
// a real Delve client stops it in the DoFn, and the job ends with the
// edit's output; SIGINT exits 130 and leaves no Delve.
func TestRunWatchDebug(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Delve's native backend; processes found in /proc")
	}
	w := newWatched(t)
	out := filepath.Join(w.mod, "out.txt")
	addr, _ := freePorts(t, 4)
	r := startDebugProcess(t, w.mod, out, "run", "--watch", ".", "--target", "host", "--debug", "--dlv", dlvBinary(t),
		"--debug-addr", addr, "--output", "json", "--", "--output="+out)
	for i, mark := range []string{"v1", "v2"} {
		if e := r.waitDebugger(t, "worker"); e.Address != addr {
			t.Errorf("run %d: worker's Delve at %s, want %s as the first run's", i+1, e.Address, addr)
		}
		c := connectNthDelve(t, r.stderr.String, addr, i+1)
		bp := breakIn(t, c, w.main, "watched/main.go", `return mark + ":" + w`)
		state := continueTo(t, c, bp)
		if got := local(t, c, state, "w"); got != "a" && got != "b" {
			t.Errorf("run %d: stopped in tag with w = %q, want a or b", i+1, got)
		}
		if _, err := c.ClearBreakpoint(bp.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.Disconnect(true); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-r.runs:
			if l.Run != i+1 || l.State != "DONE" {
				t.Fatalf("result %+v, want run %d DONE\n%s", l, i+1, r.stderr.String())
			}
		case <-r.exited:
			t.Fatalf("beamctl exited (%v) before run %d ended:\n%s", r.err, i+1, r.stderr.String())
		case <-time.After(3 * time.Minute):
			t.Fatalf("run %d did not end within 3m of the debugger leaving:\n%s", i+1, r.stderr.String())
		}
		w.counted(t, out, mark)
		if i == 0 {
			w.save(t, "v2", "0")
		}
	}
	r.interrupt(t, addr)
}

// watched is a copy of testdata/watched in a module of its own.
type watched struct {
	mod, main string
	src       []byte
}

func newWatched(t *testing.T) *watched {
	t.Helper()
	w := &watched{mod: t.TempDir()}
	var err error
	if w.src, err = os.ReadFile("testdata/watched/main.go"); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../examples/linestats/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module example.com/watched"))
	gosum, err := os.ReadFile("../../examples/linestats/go.sum")
	if err != nil {
		t.Fatal(err)
	}
	w.main = filepath.Join(w.mod, "main.go")
	for name, data := range map[string][]byte{"main.go": w.src, "go.mod": gomod, "go.sum": gosum} {
		if err := os.WriteFile(filepath.Join(w.mod, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// save writes the source with mark and delay as an editor saves it: a new
// file renamed over the old.
func (w *watched) save(t *testing.T, mark, delay string) {
	t.Helper()
	s := strings.Replace(string(w.src), `mark  = "v1"`, `mark  = "`+mark+`"`, 1)
	s = strings.Replace(s, "delay = 0 * time.Second", "delay = "+delay, 1)
	tmp := w.main + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, w.main); err != nil {
		t.Fatal(err)
	}
}

// counted checks that out holds the pipeline's output for mark.
func (w *watched) counted(t *testing.T, out, mark string) {
	t.Helper()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(b))
	slices.Sort(got)
	if want := []string{mark + ":a", mark + ":b"}; !slices.Equal(got, want) {
		t.Errorf("the job wrote %q, want %q", got, want)
	}
}

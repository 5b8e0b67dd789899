package proc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// envGuard marks a process started by StartGuard; its value is the JSON
// list of paths to remove.
const envGuard = "BEAMCTL_INTERNAL_GUARD"

// The guard is this program started again: every program that links this
// package (beamctl, beamctl-boot, test binaries) can be one.
func init() {
	if paths, ok := os.LookupEnv(envGuard); ok {
		os.Exit(guard(paths, os.Stdin))
	}
}

// reaperGrace is how long the guard lets the reapers it watches kill what
// their processes left before it kills their groups.
const reaperGrace = 2 * time.Second

// guard reads the process groups to watch from in ("+PGID", "*PGID" for a
// group led by a reaper, and "-PGID" lines) until the pipe is closed,
// which happens when the process that started it ends in any way; then it
// kills the groups still watched and removes the paths.
func guard(list string, in io.Reader) int {
	var paths []string
	if err := json.Unmarshal([]byte(list), &paths); err != nil {
		return 2
	}
	groups := map[int]byte{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 {
			continue
		}
		pgid, err := strconv.Atoi(line[1:])
		if err != nil || pgid <= 1 {
			continue
		}
		groups[pgid] = line[0]
	}
	// A reaper sees the same end and kills its process's descendants,
	// those outside the group too; killing its group now would kill the
	// reaper first and leave them running.
	var reapers []int
	for pgid, op := range groups {
		if op == '*' {
			reapers = append(reapers, pgid)
		}
	}
	awaitExit(reapers, reaperGrace)
	for pgid, op := range groups {
		if op == '+' || op == '*' {
			_ = killGroup(pgid)
		}
	}
	code := 0
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			code = 1
		}
	}
	return code
}

// Guard cleans up after this process once it ends: it kills the process
// groups it watches and removes paths.
type Guard struct {
	mu   sync.Mutex
	w    *os.File
	cmd  *exec.Cmd
	once sync.Once
	err  error
}

// StartGuard has paths removed, and the process groups given to Watch
// killed, when this process ends, however it ends: a runner may SIGKILL it,
// which leaves no chance to clean up, and a child's own children do not get
// its parent-death signal. A small process of its own (this program,
// started again) holds the read end of a pipe whose write end only this
// process has; the kernel closes it when this process dies, and the guard
// then does its work. It runs in a process group of its own, so a signal to
// this process's group leaves it be, and holds no output of this process
// open.
//
// Close does the work now, and returns once it is done.
func StartGuard(paths ...string) (*Guard, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to watch over %v: %w", paths, err)
	}
	list, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	// Both ends are close-on-exec: children started later do not inherit
	// the write end and so cannot keep the remover waiting.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envGuard+"="+string(list))
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.SysProcAttr = detachedAttr()
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the guard of %v: %w", paths, err)
	}
	return &Guard{w: w, cmd: cmd}, nil
}

// Watch has the guard kill process group pgid if this process dies first.
func (r *Guard) Watch(pgid int) { r.send('+', pgid) }

// watchReaper is Watch for the group of a reaper: the guard gives the
// reaper time to clean up before it kills the group.
func (r *Guard) watchReaper(pgid int) { r.send('*', pgid) }

// Forget takes pgid off the watch: its processes have been reaped, and the
// id may be reused.
func (r *Guard) Forget(pgid int) { r.send('-', pgid) }

func (r *Guard) send(op byte, pgid int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = fmt.Fprintf(r.w, "%c%d\n", op, pgid)
}

// Close has the guard kill what it watches and remove the paths, and waits
// until it has.
func (r *Guard) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.w.Close()
		r.mu.Unlock()
		err := r.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("removing temporary files failed (exit %d)", ee.ExitCode())
		}
		r.err = err
	})
	return r.err
}

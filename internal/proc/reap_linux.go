package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/beamctl/beamctl/internal/reaper"
)

// reaperConn is the supervising side of a process started through a reaper
// (package reaper). This process cannot be a subreaper itself: reaping
// orphans here would race with os/exec's waits for every other child.
type reaperConn struct {
	conn  *os.File // ours; closing it has the reaper kill everything
	child *os.File // the reaper's end, ours until it has started
	path  string   // the program the reaper runs
	pid   int
	once  sync.Once
}

// executable is the program a reaper runs: this one.
var executable = os.Executable

// reapCmd has cmd run through a reaper. It leaves cmd alone when cmd
// cannot start, so Start reports why as it would without one.
func reapCmd(cmd *exec.Cmd) (*reaperConn, error) {
	if cmd.Err != nil {
		return nil, nil
	}
	self, err := executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to reap the process: %w", err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reaper socket: %w", err)
	}
	r := &reaperConn{conn: os.NewFile(uintptr(fds[0]), "reaper"), child: os.NewFile(uintptr(fds[1]), "reaper"), path: cmd.Path}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	n := len(cmd.ExtraFiles)
	// The command was looked up in this process's PATH, as it is without a
	// reaper: the reaper executes the path found.
	cmd.Args = append([]string{self, cmd.Path}, cmd.Args...)
	cmd.Path = self
	cmd.Env = append(env[:len(env):len(env)], reaper.Env+"="+strconv.Itoa(n))
	cmd.ExtraFiles = append(cmd.ExtraFiles[:n:n], r.child)
	// No parent-death signal: the reaper learns of this process's death
	// from the socket and must live on to kill what the process left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return r, nil
}

// started waits until the reaper at pid has started the process, and
// returns the process's pid.
func (r *reaperConn) started(pid int) (int, error) {
	r.pid = pid
	r.child.Close()
	var line []byte
	buf := make([]byte, 64)
	for !bytes.HasSuffix(line, []byte{'\n'}) && len(line) < 256 {
		n, err := r.conn.Read(buf)
		line = append(line, buf[:n]...)
		if err != nil {
			if err == io.EOF {
				return 0, errors.New("the reaper ended before starting the process")
			}
			return 0, fmt.Errorf("reading from the reaper: %w", err)
		}
	}
	status := strings.TrimSpace(string(line))
	if op, errno, ok := strings.Cut(status, " "); ok {
		n, _ := strconv.Atoi(errno)
		if op == "prctl" {
			return 0, fmt.Errorf("becoming a child subreaper: %w", syscall.Errno(n))
		}
		// What os/exec returns when it cannot start a process.
		return 0, &os.PathError{Op: op, Path: r.path, Err: syscall.Errno(n)}
	}
	worker, err := strconv.Atoi(status)
	if err != nil {
		return 0, fmt.Errorf("the reaper answered %q", status)
	}
	return worker, nil
}

// signal passes s to the reaper, which passes it on to the process's
// group: signalling the group directly would reach the reaper too.
func (r *reaperConn) signal(s os.Signal) error {
	sig, ok := s.(syscall.Signal)
	if !ok {
		sig = syscall.SIGTERM
	}
	return syscall.Kill(r.pid, sig)
}

func (r *reaperConn) terminate() error { return syscall.Kill(r.pid, syscall.SIGTERM) }

// kill has the reaper kill the process and all it left, and exit.
func (r *reaperConn) kill() {
	r.once.Do(func() { r.conn.Close() })
}

// close lets go of the reaper's socket, which kills what it runs.
func (r *reaperConn) close() {
	r.child.Close()
	r.kill()
}

// awaitExit waits until the processes pids have exited, for at most d.
func awaitExit(pids []int, d time.Duration) {
	var fds []unix.PollFd
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		defer unix.Close(fd)
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	deadline := time.Now().Add(d)
	for len(fds) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		live := fds[:0]
		for _, p := range fds {
			if p.Revents == 0 {
				live = append(live, unix.PollFd{Fd: p.Fd, Events: unix.POLLIN})
			}
		}
		fds = live
	}
}

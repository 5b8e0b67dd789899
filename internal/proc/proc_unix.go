//go:build unix

package proc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

func termGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGTERM) }

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

func signalGroup(pid int, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		s = syscall.SIGTERM
	}
	return syscall.Kill(-pid, s)
}

// killStragglers kills what is left of a worker's process group once the
// worker itself has been reaped. The group's id cannot have been reused
// while any member is alive.
func killStragglers(pid int) { _ = killGroup(pid) }

// exitCode is the status a shell would report for a process that ended
// with err: its exit code, or 128+n when signal n killed it.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// detachedAttr starts a process in a group of its own.
func detachedAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// lockFile takes an exclusive lock on f, waiting for it if wait.
func lockFile(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	return syscall.Flock(int(f.Fd()), how)
}

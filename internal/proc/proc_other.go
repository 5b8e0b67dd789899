//go:build !unix

package proc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// Without process groups or a polite signal, stopping a worker kills it.
func termGroup(pid int) error { return killGroup(pid) }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func signalGroup(pid int, sig os.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}

// killStragglers does nothing: without process groups the worker's pid may
// already belong to another process.
func killStragglers(int) {}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode()
	}
	return 1
}

func detachedAttr() *syscall.SysProcAttr { return nil }

// lockFile cannot lock here: Sweep never takes a directory for abandoned.
func lockFile(_ *os.File, wait bool) error {
	if wait {
		return nil
	}
	return errors.New("file locks are not supported here")
}

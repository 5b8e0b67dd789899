//go:build !unix

package loopback

import (
	"os"
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

// killStragglers does nothing: without process groups the worker's pid may
// already belong to another process.
func killStragglers(int) {}

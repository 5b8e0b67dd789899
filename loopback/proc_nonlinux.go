//go:build unix && !linux

package loopback

import "syscall"

// sysProcAttr puts a worker in its own process group, so an emulator and
// whatever the worker starts are signalled together.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

//go:build unix && !linux

package proc

import "syscall"

// sysProcAttr puts the child in its own process group, so whatever it
// starts is signalled with it. These systems have no parent-death signal.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

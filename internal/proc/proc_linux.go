package proc

import "syscall"

// sysProcAttr puts the child in its own process group, so whatever it
// starts is signalled with it, and has the kernel kill it if beamctl dies
// without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

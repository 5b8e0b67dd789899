package loopback

import "syscall"

// sysProcAttr puts a worker in its own process group, so an emulator and
// whatever the worker starts are signalled together, and has the kernel kill
// it if beamctl dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

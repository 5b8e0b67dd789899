package build

import "syscall"

// childAttr makes the kernel kill a go command whose beamctl died, so no
// build keeps running unseen after beamctl is gone.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

package submit

import "syscall"

// setParentDeathSignal has the kernel kill the launcher if beamctl dies
// without the chance to do it.
func setParentDeathSignal(a *syscall.SysProcAttr) {
	a.Pdeathsig = syscall.SIGKILL
}

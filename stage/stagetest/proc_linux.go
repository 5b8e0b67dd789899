package stagetest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the job server if the test binary dies
// without running its clean-up.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

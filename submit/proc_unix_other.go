//go:build unix && !linux

package submit

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}

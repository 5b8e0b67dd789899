//go:build unix

package loopback

import "syscall"

func termGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGTERM) }

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

// killStragglers kills what is left of a worker's process group once the
// worker itself has been reaped. The group's id cannot have been reused
// while any member is alive.
func killStragglers(pid int) { _ = killGroup(pid) }

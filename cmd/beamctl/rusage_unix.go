//go:build unix

package main

import (
	"runtime"
	"syscall"
)

// peakRSS is this process's peak resident set size in bytes, not
// counting the launcher or workers it ran.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss)
	}
	return int64(ru.Maxrss) * 1024
}

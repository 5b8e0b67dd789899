//go:build linux || android

package digest

import (
	"os"
	"syscall"
	"time"
)

// Linux stamps file times from its coarse clock, which ticks at least every
// 10ms (HZ=100): on a file system that keeps nanoseconds, a write after the
// hash began carries a time no earlier than a tick before it.
const (
	fineTimes  = true
	fineCutoff = 50 * time.Millisecond
)

func stateOf(fi os.FileInfo) state {
	s := state{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
		s.ctime = st.Ctim.Nano()
	}
	return s
}

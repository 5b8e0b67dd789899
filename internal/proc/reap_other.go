//go:build !linux

package proc

import (
	"os"
	"os/exec"
	"time"
)

// Only Linux has child subreapers: elsewhere a process runs without a
// reaper, and what leaves its process group is not followed.
type reaperConn struct{}

func reapCmd(*exec.Cmd) (*reaperConn, error) { return nil, nil }
func (*reaperConn) started(int) (int, error) { return 0, nil }
func (*reaperConn) signal(os.Signal) error   { return nil }
func (*reaperConn) terminate() error         { return nil }
func (*reaperConn) kill()                    {}
func (*reaperConn) close()                   {}
func awaitExit([]int, time.Duration)         {}

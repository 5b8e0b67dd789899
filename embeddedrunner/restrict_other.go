//go:build unix && !linux

package embeddedrunner

import (
	"fmt"
	"runtime"
)

func (s *serverSocket) restrictToLoopback() (string, error) {
	return "", fmt.Errorf("restricting a listening socket to loopback is not implemented on %s", runtime.GOOS)
}

//go:build !unix

package embeddedrunner

import (
	"context"
	"fmt"
	"runtime"
)

// serverSocket cannot be reached on this platform: prism's listener stays
// open on every interface until the process exits.
type serverSocket struct{}

func findServerSocket(int) (*serverSocket, error) {
	return nil, fmt.Errorf("finding prism's listening socket is not implemented on %s", runtime.GOOS)
}

func (*serverSocket) restrictToLoopback() (string, error) {
	return "", fmt.Errorf("not implemented on %s", runtime.GOOS)
}

func (*serverSocket) stop(context.Context) error { return nil }

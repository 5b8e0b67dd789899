//go:build unix

package embeddedrunner

import "testing"

// assertNoSocketsOnPort fails if this process still has a TCP socket whose
// local port is port: neither prism's listener nor a connection it accepted.
func assertNoSocketsOnPort(t *testing.T, port int) {
	t.Helper()
	var n int
	if err := eachSocket(func(_, fd int) bool {
		if isTCP(fd) && localPort(fd) == port {
			n++
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("%d sockets on port %d are still open after Close", n, port)
	}
}

//go:build unix

package embeddedrunner

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// fdDir lists this process's open file descriptors (on Linux a link to
// /proc/self/fd).
const fdDir = "/dev/fd"

// serverSocket is prism's listening socket, reached from outside the gRPC
// server that owns it. fd is a duplicate, so it stays the same socket however
// the server's own descriptor is used.
type serverSocket struct {
	port int
	fd   int
	ino  uint64
}

// findServerSocket finds the TCP socket listening on port in this process.
func findServerSocket(port int) (*serverSocket, error) {
	var found *serverSocket
	err := eachSocket(func(_, fd int) bool {
		if !isTCP(fd) || localPort(fd) != port || !listening(fd) {
			return false
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return false
		}
		found = &serverSocket{port: port, fd: fd, ino: uint64(st.Ino)}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("no socket listening on port %d in this process", port)
	}
	return found, nil
}

// eachSocket calls keep with the number of each socket descriptor of this
// process and a private duplicate of it, so a descriptor closed and reused
// meanwhile is never mistaken for another; keep returns true to take
// ownership of the duplicate and stop.
func eachSocket(keep func(n, fd int) bool) error {
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return fmt.Errorf("list open files: %w", err)
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(n, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		fd, err := unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if keep(n, fd) {
			return nil
		}
		unix.Close(fd)
	}
	return nil
}

func isTCP(fd int) bool {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_STREAM
}

func listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v != 0
}

func localPort(fd int) int {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return -1
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return -1
}

// stop makes prism's gRPC server stop serving and release the port.
//
// Shutting the listening socket down makes the server's pending accept fail
// with a permanent error, on which gRPC's Serve returns and closes its
// listener. Connections it accepted are shut down too, which ends their
// transports. stop returns once the server has closed its descriptor of
// the listener, and then closes its own.
func (s *serverSocket) stop(ctx context.Context) error {
	defer unix.Close(s.fd)
	if err := unix.Shutdown(s.fd, unix.SHUT_RD); err != nil {
		return fmt.Errorf("shut the listening socket down: %w", err)
	}
	_ = eachSocket(func(_, fd int) bool {
		if isTCP(fd) && localPort(fd) == s.port && !listening(fd) && !s.same(fd) {
			_ = unix.Shutdown(fd, unix.SHUT_RDWR)
		}
		return false
	})

	// gRPC closes its listener asynchronously, from its serving goroutine;
	// nothing but the descriptor table tells when it is done.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		open := false
		_ = eachSocket(func(n, fd int) bool {
			open = open || (n != s.fd && s.same(fd))
			return false
		})
		if !open {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server did not close its listener: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// same reports whether fd is another descriptor of the listening socket.
func (s *serverSocket) same(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && uint64(st.Ino) == s.ino
}

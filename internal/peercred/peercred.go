// Package peercred tells which user runs the client of a TCP connection
// that a server on this machine accepted from this machine: loopback is not
// access control on a shared machine, the peer's user is.
package peercred

import (
	"errors"
	"net"
)

// ErrUnknown is returned when the system cannot say who the peer is: it is
// on another machine, or this system offers no way to tell.
var ErrUnknown = errors.New("the peer's user cannot be identified")

// UID returns the user id owning the client socket of a connection this
// process accepted, where local is the connection's local address (the
// server's) and remote its remote address (the client's).
func UID(local, remote net.Addr) (uint32, error) {
	l, ok1 := local.(*net.TCPAddr)
	r, ok2 := remote.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, ErrUnknown
	}
	return tcpPeerUID(l, r)
}

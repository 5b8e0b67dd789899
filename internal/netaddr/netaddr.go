// Package netaddr answers, in one place, which addresses stay on this
// machine.
package netaddr

import (
	"net"
	"strings"
)

// LoopbackHost reports whether host can only be reached from this machine:
// localhost or a loopback IP. An empty host or an unspecified address
// (0.0.0.0, ::) listens on every interface, so it is not loopback.
func LoopbackHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Local reports whether dialing the HOST:PORT endpoint (optionally with a
// gRPC scheme such as dns:///) stays on this machine, where a plaintext
// connection cannot be overheard.
func Local(endpoint string) bool {
	if i := strings.Index(endpoint, ":///"); i >= 0 {
		endpoint = endpoint[i+4:]
	}
	h, _, err := net.SplitHostPort(endpoint)
	return err == nil && h != "" && ThisMachine(h)
}

// ThisMachine reports whether host means "the machine that dials it":
// loopback, empty or unspecified (dialing 0.0.0.0 reaches this machine).
// A server announcing such an address means its own machine.
func ThisMachine(host string) bool {
	if host == "" || LoopbackHost(host) {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsUnspecified()
}

// Host returns the host of a HOST:PORT endpoint, without a gRPC scheme.
func Host(endpoint string) string {
	if i := strings.Index(endpoint, ":///"); i >= 0 {
		endpoint = endpoint[i+4:]
	}
	h, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return endpoint
	}
	return h
}

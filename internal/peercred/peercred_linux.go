package peercred

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

// tcpPeerUID finds the client's socket in the kernel's socket table (what
// ss reads): its local address is the connection's remote one, and the
// other way round. Its owner is the peer's user.
func tcpPeerUID(local, remote *net.TCPAddr) (uint32, error) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		uid, err := lookup(table, remote, local)
		if err == nil {
			return uid, nil
		}
		if err != ErrUnknown {
			return 0, err
		}
	}
	return 0, ErrUnknown
}

func lookup(table string, local, remote *net.TCPAddr) (uint32, error) {
	f, err := os.Open(table)
	if os.IsNotExist(err) {
		return 0, ErrUnknown
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return scanTable(table, f, local, remote)
}

// scanTable finds the socket from local to remote in a socket table read
// from r, named table, and returns its owner.
func scanTable(table string, r io.Reader, local, remote *net.TCPAddr) (uint32, error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		// sl local rem st queues tr retrnsmt uid ...
		if len(fields) < 8 {
			continue
		}
		la, err1 := parseAddr(fields[1])
		ra, err2 := parseAddr(fields[2])
		if err1 != nil || err2 != nil || !same(la, local) || !same(ra, remote) {
			continue
		}
		uid, err := strconv.ParseUint(string(fields[7]), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("reading %s: uid %q: %w", table, fields[7], err)
		}
		return uint32(uid), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", table, err)
	}
	return 0, ErrUnknown
}

// parseAddr reads ADDR:PORT as the kernel prints it: the address in hex,
// as 32-bit words in the host's byte order, the port in hex.
func parseAddr(b []byte) (*net.TCPAddr, error) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return nil, fmt.Errorf("no port in %q", b)
	}
	raw, err := hex.DecodeString(string(b[:i]))
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, fmt.Errorf("bad address %q", b[:i])
	}
	port, err := strconv.ParseUint(string(b[i+1:]), 16, 16)
	if err != nil {
		return nil, err
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		binary.BigEndian.PutUint32(ip[w:], binary.NativeEndian.Uint32(raw[w:]))
	}
	return &net.TCPAddr{IP: ip, Port: int(port)}, nil
}

func same(a, b *net.TCPAddr) bool { return a.Port == b.Port && a.IP.Equal(b.IP) }

//go:build linux

package peercred

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// kernelAddr writes a as /proc/net/tcp does: the address as 32-bit words
// in the host's byte order, in hex, then the port.
func kernelAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		ip = a.IP.To16()
	}
	raw := make([]byte, len(ip))
	for w := 0; w < len(ip); w += 4 {
		binary.NativeEndian.PutUint32(raw[w:], binary.BigEndian.Uint32(ip[w:]))
	}
	return fmt.Sprintf("%s:%04X", strings.ToUpper(hex.EncodeToString(raw)), a.Port)
}

// FuzzSocketTable reads socket tables no kernel wrote, looking for one
// connection: the owner is found only on a line that names both its ends,
// anything else is ErrUnknown or a one-line error, and an address read
// from a table is written back the same.
func FuzzSocketTable(f *testing.F) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	header := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	row := func(l, r, uid string) string {
		return fmt.Sprintf("   0: %s %s 01 00000000:00000000 00:00000000 00000000  %s        0 12345 1 0000000000000000 20 4 30 10 -1\n", l, r, uid)
	}
	for _, table := range []string{
		header + row(kernelAddr(local), kernelAddr(remote), "1000"),
		header + row(kernelAddr(remote), kernelAddr(local), "0") + row(kernelAddr(local), kernelAddr(remote), "4294967295"),
		header + row(kernelAddr(local), kernelAddr(remote), "-1"),
		header + row(kernelAddr(local), kernelAddr(remote), "99999999999"),
		header + row("0100007F", kernelAddr(remote), "1"),
		header + row("0000000000000000FFFF00000100007F:C350", kernelAddr(remote), "1"),
		header + "   0: 0100007F:C350\n",
		"",
		header,
	} {
		f.Add([]byte(table))
	}
	f.Fuzz(func(t *testing.T, table []byte) {
		uid, err := scanTable("tcp", bytes.NewReader(table), local, remote)
		switch {
		case errors.Is(err, ErrUnknown):
		case err != nil:
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		default:
			// The owner came from a line naming both ends.
			found := false
			for _, l := range strings.Split(string(table), "\n") {
				fields := strings.Fields(l)
				if len(fields) >= 8 && sameFields(fields[1], fields[2], local, remote) {
					found = true
				}
			}
			if !found {
				t.Fatalf("uid %d found with no line for %v -> %v", uid, local, remote)
			}
		}
		for _, l := range strings.Split(string(table), "\n") {
			for _, field := range strings.Fields(l) {
				a, err := parseAddr([]byte(field))
				if err != nil {
					continue
				}
				back, err := parseAddr([]byte(kernelAddr(a)))
				if err != nil || !same(a, back) {
					t.Fatalf("%q reads as %v, written back as %q: %v, %v", field, a, kernelAddr(a), back, err)
				}
			}
		}
	})
}

func sameFields(l, r string, local, remote *net.TCPAddr) bool {
	la, err1 := parseAddr([]byte(l))
	ra, err2 := parseAddr([]byte(r))
	return err1 == nil && err2 == nil && same(la, local) && same(ra, remote)
}

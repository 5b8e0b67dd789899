package peercred

import (
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
)

func TestUIDOfLoopbackPeer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the Linux socket table")
	}
	for _, network := range []struct{ net, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(network.net, func(t *testing.T) {
			lis, err := net.Listen(network.net, network.addr)
			if err != nil {
				t.Skip(err)
			}
			defer lis.Close()
			client, err := net.Dial(network.net, lis.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server, err := lis.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			uid, err := UID(server.LocalAddr(), server.RemoteAddr())
			if err != nil || uid != uint32(os.Getuid()) {
				t.Errorf("UID = %d, %v; want %d", uid, err, os.Getuid())
			}
			// A connection the table does not hold is unknown, not anyone's.
			_, err = UID(server.LocalAddr(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
			if !errors.Is(err, ErrUnknown) {
				t.Errorf("UID of a connection that does not exist = %v; want ErrUnknown", err)
			}
		})
	}
}

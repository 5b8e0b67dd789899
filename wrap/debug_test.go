package wrap

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		spec        string
		expose      bool
		first, last int
		err         string
	}{
		{spec: "127.0.0.1:2345", first: 2345, last: 65535},
		{spec: "127.0.0.1:2345-2350", first: 2345, last: 2350},
		{spec: "localhost:9000-9000", first: 9000, last: 9000},
		{spec: "[::1]:2345", first: 2345, last: 65535},
		{spec: "0.0.0.0:2345", expose: true, first: 2345, last: 65535},
		{spec: "0.0.0.0:2345", err: "DebugAddr host \"0.0.0.0\" is not a loopback address"},
		{spec: ":2345", err: "not a loopback address"},
		{spec: "2345", err: "is not HOST:PORT"},
		{spec: "127.0.0.1:2350-2345", err: "has no usable port"},
		{spec: "127.0.0.1:0", err: "has no usable port"},
		{spec: "127.0.0.1:2345-70000", err: "has no usable port"},
		{spec: "127.0.0.1:x", err: "has no usable port"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			p, err := ParsePorts(tc.spec, tc.expose)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one with %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case p.first != tc.first || p.last != tc.last:
				t.Errorf("ports %d-%d, want %d-%d", p.first, p.last, tc.first, tc.last)
			}
		})
	}
}

// TestPortsTake hands out consecutive ports, skips one something else
// listens on, gives a released port out again and says when none is left.
func TestPortsTake(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	if port < 2 || port > 65532 {
		t.Skipf("port %d leaves no room around it", port)
	}
	// The range starts one below the busy port.
	p, err := ParsePorts("127.0.0.1:"+strconv.Itoa(port-1)+"-"+strconv.Itoa(port+1), false)
	if err != nil {
		t.Fatal(err)
	}
	a, releaseA, err := p.Take()
	if err != nil {
		t.Skipf("port %d is taken too: %v", port-1, err)
	}
	b, _, err := p.Take()
	if err != nil {
		t.Skipf("port %d is taken too: %v", port+1, err)
	}
	want := []string{"127.0.0.1:" + strconv.Itoa(port-1), "127.0.0.1:" + strconv.Itoa(port+1)}
	if got := []string{a, b}; !slices.Equal(got, want) {
		t.Errorf("took %v, want %v: consecutive ports past the busy one", got, want)
	}
	if _, _, err := p.Take(); err == nil || !strings.Contains(err.Error(), "no free port") {
		t.Errorf("a full range gave %v, want no free port", err)
	}
	releaseA()
	releaseA()
	if again, _, err := p.Take(); err != nil || again != a {
		t.Errorf("after release took %q, %v; want %q again", again, err, a)
	}
}

func TestDelveCommand(t *testing.T) {
	argv := []string{"/proc/self/fd/3", "--worker=true", "--id=1"}
	for _, tc := range []struct {
		wait, multi bool
		want        []string
	}{
		{true, true, []string{"dlv", "exec", "--headless", "--api-version=2", "--listen=127.0.0.1:2345", "--accept-multiclient", "/proc/self/fd/3", "--", "--worker=true", "--id=1"}},
		{false, true, []string{"dlv", "exec", "--headless", "--api-version=2", "--listen=127.0.0.1:2345", "--accept-multiclient", "--continue", "/proc/self/fd/3", "--", "--worker=true", "--id=1"}},
	} {
		if got := DelveCommand("dlv", "127.0.0.1:2345", tc.wait, tc.multi, argv); !slices.Equal(got, tc.want) {
			t.Errorf("DelveCommand(wait %v) = %q, want %q", tc.wait, got, tc.want)
		}
	}
	if got := DelveCommand("dlv", "a:1", true, false, []string{"/bin/prog"}); slices.Contains(got, "--") || slices.Contains(got, "--accept-multiclient") {
		t.Errorf("a program without arguments or other clients: %q", got)
	}
}

// TestDebugRefusesForeignWorkers: Delve cannot follow qemu-user.
func TestDebugRefusesForeignWorkers(t *testing.T) {
	p, err := ParsePorts("127.0.0.1:2345", false)
	if err != nil {
		t.Fatal(err)
	}
	d := &Debug{Delve: "dlv", Ports: p}
	l := &Launch{OS: "linux", Arch: "arm64", Argv: []string{"/proc/self/fd/3"}}
	if l.Arch == runtime.GOARCH {
		l.Arch = "amd64"
	}
	if err := d.Wrap(context.Background(), l); err == nil || !strings.Contains(err.Error(), "qemu-user") {
		t.Errorf("Wrap of a foreign worker: %v", err)
	}
	if len(p.used) != 0 {
		t.Errorf("a refused worker kept ports %v", p.used)
	}
}

package embeddedrunner

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/syncbuf"
)

// nonLoopbackAddrs are this machine's addresses other than loopback and
// link-local ones (which need a zone to dial).
func nonLoopbackAddrs(t *testing.T) []net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		ips = append(ips, n.IP)
	}
	return ips
}

func TestLoopbackOnly(t *testing.T) {
	ips := nonLoopbackAddrs(t)
	if len(ips) == 0 {
		t.Skip("this machine has no non-loopback address")
	}
	var logs syncbuf.Buffer
	r := start(t, Options{Logger: debugLogger(&logs)})
	port := strconv.Itoa(portOf(t, r.Endpoint()))

	if !strings.Contains(logs.String(), "restricted to the loopback interface") {
		t.Errorf("mitigation not logged at debug level:\n%s", logs.String())
	}

	d := net.Dialer{Timeout: 5 * time.Second}
	ctx := context.Background()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		c.Close()
	}
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err == nil {
			c.Close()
			t.Errorf("connected to the embedded runner through %s", ip)
			continue
		}
		if !strings.Contains(err.Error(), "refused") {
			t.Errorf("dial %s: %v, want connection refused", ip, err)
		}
	}
}

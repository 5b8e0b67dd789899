package submit_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/submit"
)

// FuzzParseEndpoint parses --endpoint values nobody checked: each is
// refused in one line as an invalid endpoint, or is HOST:PORT whose parts
// join back into an endpoint that parses the same.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"localhost:8099", "127.0.0.1:8099", "[::1]:8099", "http://localhost:8099", "localhost", ":8099",
		"host:0", "host:65536", "a b:1", "[::1", "host:-1", "host:+80", "h:08099"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		host, port, err := submit.ParseEndpoint(endpoint)
		if err != nil {
			if !errors.Is(err, submit.ErrInvalidEndpoint) {
				t.Fatalf("ParseEndpoint(%q): %v is not an invalid endpoint", endpoint, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseEndpoint(%q): error spans lines: %q", endpoint, err)
			}
			return
		}
		if port < 1 || port > 65535 || host == "" {
			t.Fatalf("ParseEndpoint(%q) = %q, %d", endpoint, host, port)
		}
		h2, p2, err := submit.ParseEndpoint(net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("ParseEndpoint(%q) = %q, %d, which joined parses to %q, %d, %v", endpoint, host, port, h2, p2, err)
		}
	})
}

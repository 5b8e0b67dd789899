package netaddr_test

import (
	"testing"

	"github.com/beamctl/beamctl/internal/netaddr"
)

func TestLocal(t *testing.T) {
	tests := []struct {
		endpoint string
		want     bool
	}{
		{"localhost:8099", true},
		{"LOCALHOST:8099", true},
		{"127.0.0.1:8099", true},
		{"127.0.1.1:8099", true},
		{"[::1]:8099", true},
		{"0.0.0.0:8099", true},
		{"jobs.localhost:8099", true},
		{"10.0.0.5:8099", false},
		{"[2001:db8::1]:8099", false},
		{"jobs.example:8099", false},
		{"localhost.example:8099", false},
		{"localhost", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := netaddr.Local(tt.endpoint); got != tt.want {
			t.Errorf("Local(%q) = %v; want %v", tt.endpoint, got, tt.want)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"[::1]", true}, {"localhost", true},
		{"", false}, {"0.0.0.0", false}, {"::", false}, {"10.0.0.5", false}, {"example.com", false},
	} {
		if got := netaddr.LoopbackHost(tt.host); got != tt.want {
			t.Errorf("LoopbackHost(%q) = %v; want %v", tt.host, got, tt.want)
		}
	}
}

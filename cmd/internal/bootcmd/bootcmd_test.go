package bootcmd

import (
	"slices"
	"testing"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		argv []string
		want []string
	}{
		{argv: []string{"/usr/bin/beamctl", "--id='1'", "--provision_endpoint=localhost:1"}, want: []string{"boot", "--id='1'", "--provision_endpoint=localhost:1"}},
		{argv: []string{"/usr/bin/beamctl", "--worker_pool"}, want: []string{"boot", "--worker_pool"}},
		{argv: []string{"/opt/apache/beam/boot", "--id=1"}, want: []string{"boot", "--id=1"}},
		{argv: []string{"/usr/bin/beamctl", "boot", "--id=1"}},
		{argv: []string{"/usr/bin/beamctl", "run", "--id=1"}},
		{argv: []string{"/usr/bin/beamctl", "--identity"}},
		{argv: []string{"/usr/bin/beamctl"}},
		{argv: []string{"/tmp/beamctl.test", "-test.run=x"}},
	}
	for _, tt := range tests {
		if got := Args(tt.argv); !slices.Equal(got, tt.want) {
			t.Errorf("Args(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

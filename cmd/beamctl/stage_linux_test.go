package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestStageDiskFull writes the image where there is no room: one line,
// exit 1, and no half-written tarball under the name asked for.
func TestStageDiskFull(t *testing.T) {
	t.Parallel()
	dist := bootDist(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Skip(t, testenv.Root, "cannot mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	for _, tt := range []struct {
		name string
		args []string
		out  string
	}{
		{"tarball", []string{"--tarball", filepath.Join(dir, "wc.tar")}, filepath.Join(dir, "wc.tar")},
		{"oci layout", []string{"--oci-layout", filepath.Join(dir, "layout")}, filepath.Join(dir, "layout", "index.json")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := beamctl(t, append([]string{"stage", dist, "--image", "wc:v1"}, tt.args...)...)
			if r.code != exitFailure || !strings.Contains(r.stderr, "no space left on device") {
				t.Fatalf("exit %d, stderr %q; want exit 1 and no space left", r.code, r.stderr)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one:\n%s", n+1, r.stderr)
			}
			if data, err := os.ReadFile(tt.out); err == nil && strings.Contains(string(data), "wc:v1") {
				t.Errorf("%s names the image after the failure", tt.out)
			} else if err == nil && tt.name == "tarball" {
				t.Errorf("a tarball was left at %s", tt.out)
			}
		})
	}
}

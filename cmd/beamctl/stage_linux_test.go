package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestBuildDiskFull rebuilds a DIST on a file system that runs out of room
// while the new binaries are written beside it: one line, exit 1, the
// previous DIST exactly as it was, and no temporary file left.
func TestBuildDiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Room for wordcount's launcher and worker for this machine, not for
	// those and a second worker beside them.
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=300m"); err != nil {
		testenv.Skip(t, testenv.Root, "cannot mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	dist := filepath.Join(dir, "dist")
	before := buildJSON(t, "../../examples/wordcount", "--target", "host", "--out", dist)
	r := beamctl(t, "build", "../../examples/wordcount", "--target", "host,linux/arm64", "--out", dist)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no space left on device") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and no space left", r.code, r.stderr)
	}
	// Progress lines aside, the failure is one line naming DIST's file.
	if n := strings.Count(r.stderr, "beamctl: "); n != 1 || !strings.Contains(r.stderr, "beamctl: writing "+filepath.Join(dist, "wordcount-worker-linux-arm64")+": no space left on device\n") {
		t.Errorf("want one line naming %s:\n%s", filepath.Join(dist, "wordcount-worker-linux-arm64"), r.stderr)
	}
	after, err := build.ReadManifest(dist)
	if err != nil {
		t.Fatalf("the previous DIST is gone: %v", err)
	}
	if len(after.Binaries) != len(before.Binaries) {
		t.Fatalf("DIST lists %d binaries after the failure, %d before", len(after.Binaries), len(before.Binaries))
	}
	for i, b := range after.Binaries {
		data, err := os.ReadFile(filepath.Join(dist, b.File))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if b != before.Binaries[i] || hex.EncodeToString(sum[:]) != b.SHA256 {
			t.Errorf("%s changed", b.File)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "dist" {
			t.Errorf("%s left beside DIST", e.Name())
		}
	}
	if entries, _ := os.ReadDir(dist); len(entries) != len(before.Binaries)+1 {
		t.Errorf("DIST holds %d entries, want its %d binaries and manifest", len(entries), len(before.Binaries))
	}
}

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

package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/beamctl/beamctl/internal/digest"
)

// output is one build's binaries, as file name → content, placed in a
// build cache.
type output struct {
	m    *Manifest
	jobs []*job
}

// builtOutput puts files into cache as a build leaves its binaries there,
// and plans their publishing.
func builtOutput(t *testing.T, cache, version string, files map[string]string) output {
	t.Helper()
	o := output{m: &Manifest{Schema: ManifestSchema, Name: version}}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(cache, version, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(files[name]))
		b := Binary{Role: RoleWorker, Platform: Platform{OS: "linux", Arch: "amd64"}, File: name,
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(files[name]))}
		o.m.Binaries = append(o.m.Binaries, b)
		o.jobs = append(o.jobs, &job{bin: b, cacheOut: p})
	}
	return o
}

func (o output) publish(ctx context.Context, dir string) error {
	return publish(ctx, dir, o.m, o.jobs, slog.New(slog.DiscardHandler))
}

// snapshot is what a directory tree holds: each path's content (a link's
// target, "dir" for a directory) and mode, and each file's identity.
type snapshot struct {
	desc  map[string]string
	files map[string]os.FileInfo
}

func snap(t *testing.T, dir string) snapshot {
	t.Helper()
	s := snapshot{desc: map[string]string{}, files: map[string]os.FileInfo{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			s.desc[rel] = "-> " + target
		case d.IsDir():
			s.desc[rel] = "dir " + fi.Mode().Perm().String()
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.desc[rel] = string(data) + " " + fi.Mode().Perm().String()
			s.files[rel] = fi
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// same reports whether two snapshots hold the same, down to which file
// is beneath each path.
func (s snapshot) same(o snapshot) bool {
	if !maps.Equal(s.desc, o.desc) {
		return false
	}
	for p, fi := range s.files {
		if !os.SameFile(fi, o.files[p]) {
			return false
		}
	}
	return true
}

// onlyEntry fails unless dir's parent holds dir alone: no staging
// directory of a publish is left beside it.
func onlyEntry(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != filepath.Base(dir) {
		t.Errorf("beside the output: %q, want only %s", names, filepath.Base(dir))
	}
}

// TestPublishReplacesWhole publishes over an earlier output: binaries of
// targets no longer built go, files no build wrote stay, an unchanged
// binary stays the build cache's file, and the directory keeps its mode.
func TestPublishReplacesWhole(t *testing.T) {
	cache, dist := t.TempDir(), filepath.Join(t.TempDir(), "dist")
	a := builtOutput(t, cache, "a", map[string]string{"p-worker-linux-amd64": "A worker", "p-worker-linux-arm64": "A arm64"})
	if err := a.publish(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	onlyEntry(t, dist)
	os.WriteFile(filepath.Join(dist, "NOTES"), []byte("mine"), 0o600)
	os.MkdirAll(filepath.Join(dist, "docs", "deep"), 0o755)
	os.WriteFile(filepath.Join(dist, "docs", "deep", "x.md"), []byte("x"), 0o644)
	os.Symlink("NOTES", filepath.Join(dist, "notes-link"))
	os.Chmod(dist, 0o750)

	b := builtOutput(t, cache, "b", map[string]string{"p-worker-linux-amd64": "B worker", "p-launcher-linux-amd64": "B launcher"})
	if err := b.publish(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	onlyEntry(t, dist)
	// A mode that does not let its owner write is kept too.
	os.Chmod(dist, 0o550)
	if err := b.publish(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	onlyEntry(t, dist)
	if fi, err := os.Stat(dist); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o550 {
		t.Errorf("the output's mode is %v, want it kept at 0550", fi.Mode().Perm())
	}
	os.Chmod(dist, 0o750)
	m, err := ReadManifest(dist)
	if err != nil || m.Name != "b" {
		t.Fatalf("manifest %+v, %v; want b's", m, err)
	}
	got := snap(t, dist).desc
	for _, gone := range []string{"p-worker-linux-arm64"} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s, of a target no longer built, is still there", gone)
		}
	}
	for path, prefix := range map[string]string{
		".":                      "dir -rwxr-x---",
		"NOTES":                  "mine -rw-------",
		"docs/deep/x.md":         "x ",
		"notes-link":             "-> NOTES",
		"p-worker-linux-amd64":   "B worker",
		"p-launcher-linux-amd64": "B launcher",
	} {
		if !strings.HasPrefix(got[path], prefix) {
			t.Errorf("%s: %q, want %q...", path, got[path], prefix)
		}
	}
	for _, j := range b.jobs {
		ci, _ := os.Stat(j.cacheOut)
		di, err := os.Stat(filepath.Join(dist, j.bin.File))
		if err != nil || !os.SameFile(ci, di) {
			t.Errorf("%s is not the build cache's file (%v): a rebuild would hash or copy it again", j.bin.File, err)
		}
	}
}

// TestPublishFailureLeavesOld injects a failure, or a cancellation, at
// each step of a publish: the old output must stay exactly as it was, the
// same files and not only the same bytes, with nothing left beside it.
func TestPublishFailureLeavesOld(t *testing.T) {
	cache, dist := t.TempDir(), filepath.Join(t.TempDir(), "dist")
	a := builtOutput(t, cache, "a", map[string]string{"p-worker-linux-amd64": "A worker", "p-worker-linux-arm64": "A arm64"})
	if err := a.publish(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dist, "NOTES"), []byte("mine"), 0o600)
	before := snap(t, dist)
	b := builtOutput(t, cache, "b", map[string]string{"p-worker-linux-amd64": "B worker", "p-launcher-linux-amd64": "B launcher"})

	injected := errors.New("injected")
	steps := []string{"binary p-launcher-linux-amd64", "binary p-worker-linux-amd64", "manifest", "swap"}
	for _, step := range steps {
		for _, how := range []string{"error", "cancel"} {
			t.Run(step+"/"+how, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var reached bool
				publishFault = func(s string) error {
					if s != step {
						return nil
					}
					reached = true
					if how == "cancel" {
						// As Ctrl-C does: the step itself goes on.
						cancel()
						return nil
					}
					return injected
				}
				defer func() { publishFault = nil }()
				err := b.publish(ctx, dist)
				if !reached {
					t.Fatalf("the publish never reached %q", step)
				}
				want := injected
				if how == "cancel" {
					want = context.Canceled
				}
				if !errors.Is(err, want) {
					t.Errorf("publish returned %v, want %v", err, want)
				}
				if after := snap(t, dist); !after.same(before) {
					t.Errorf("the old output changed:\nbefore %q\nafter  %q", before.desc, after.desc)
				}
				onlyEntry(t, dist)
			})
		}
	}
	// Every step the publish has is one the test fails at.
	var all []string
	publishFault = func(s string) error { all = append(all, s); return nil }
	defer func() { publishFault = nil }()
	if err := b.publish(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all, steps) {
		t.Errorf("publish steps %q, the test injects at %q", all, steps)
	}
}

// TestPublishReadersSeeOneVersion reads an output while it is published
// over and over, alternately two versions with a binary of the same name:
// a reader that opens the directory must find the manifest and the
// binaries of one version, never the manifest of one beside a binary of
// the other, as publishing file by file would show.
func TestPublishReadersSeeOneVersion(t *testing.T) {
	if ok, err := exchange(t.TempDir(), t.TempDir()); !ok || err != nil {
		t.Skipf("no exchange of directories here (%v): readers may find the output missing for a moment", err)
	}
	cache, dist := t.TempDir(), filepath.Join(t.TempDir(), "dist")
	versions := []output{
		builtOutput(t, cache, "a", map[string]string{"w": "a", "only-a": "a"}),
		builtOutput(t, cache, "b", map[string]string{"w": "b", "only-b": "b"}),
	}
	if err := versions[0].publish(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, mixes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			root, err := os.OpenRoot(dist)
			if err != nil {
				t.Errorf("opening the output: %v", err)
				return
			}
			m, err := readManifestIn(root)
			if err == nil {
				for _, b := range m.Binaries {
					// The old directory may be removed under a slow reader;
					// a file that is there must be of the manifest's version.
					if data, err := root.ReadFile(b.File); err == nil && string(data) != m.Name {
						mixes.Add(1)
					}
				}
				reads.Add(1)
			}
			root.Close()
		}
	})
	for i := range 100 {
		if err := versions[(i+1)%2].publish(t.Context(), dist); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if mixes.Load() > 0 {
		t.Errorf("%d of %d reads found a binary of another version than the manifest's", mixes.Load(), reads.Load())
	}
	if reads.Load() == 0 {
		t.Error("the reader never read the output")
	}
	onlyEntry(t, dist)
}

func readManifestIn(root *os.Root) (*Manifest, error) {
	data, err := root.ReadFile(ManifestFile)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// TestPublishThroughLink publishes to an output that is a symbolic link:
// the link stays, and its target is replaced.
func TestPublishThroughLink(t *testing.T) {
	cache, parent := t.TempDir(), t.TempDir()
	real := filepath.Join(parent, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(parent, "dist")
	if err := os.Symlink("real", link); err != nil {
		t.Skip(err)
	}
	b := builtOutput(t, cache, "b", map[string]string{"w": "b"})
	if err := b.publish(t.Context(), link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link is gone: %v %v", fi, err)
	}
	if data, err := os.ReadFile(filepath.Join(real, "w")); err != nil || string(data) != "b" {
		t.Errorf("the target holds %q, %v", data, err)
	}
}

// TestBinaryDigestCancelled hashes a binary with no digest record under a
// cancelled context: it must stop, not read the file to its end.
func TestBinaryDigestCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, 8<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := digest.NewCache()
	if _, _, err := binaryDigest(ctx, p, c); !errors.Is(err, context.Canceled) {
		t.Errorf("binaryDigest = %v, want context.Canceled", err)
	}
	if n := c.Hashed(p); n != 0 {
		t.Errorf("hashed %d bytes after the cancel", n)
	}
}

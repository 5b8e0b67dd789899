package watch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/beamctl/beamctl/build"
)

// TestWatcher makes changes that do not matter to a build, then a save of
// a source: the first change told must be that save alone, once, however
// many events it made. Had any earlier change counted, it would have been
// told first or merged into it.
func TestWatcher(t *testing.T) {
	t.Parallel()
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		// quiet changes nothing a build reads.
		quiet func(dir string)
		// save changes the build; want is the change told.
		save func(dir string)
		want []string
	}{
		{name: "a source written",
			quiet: func(dir string) { write(filepath.Join(dir, "out.txt"), "output\n") },
			save:  func(dir string) { write(filepath.Join(dir, "main.go"), "package main\n") },
			want:  []string{"main.go"}},
		{name: "a source replaced, as editors save",
			quiet: func(dir string) { write(filepath.Join(dir, "notes.md"), "notes\n") },
			save: func(dir string) {
				write(filepath.Join(dir, "main.go.swp"), "package main\n")
				if err := os.Rename(filepath.Join(dir, "main.go.swp"), filepath.Join(dir, "main.go")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"main.go"}},
		{name: "a save of many writes",
			quiet: func(dir string) { _ = os.Chmod(filepath.Join(dir, "main.go"), 0o600) },
			save: func(dir string) {
				for range 20 {
					write(filepath.Join(dir, "main.go"), "package main\n")
				}
			},
			want: []string{"main.go"}},
		{name: "a Go file added to a package",
			quiet: func(dir string) { write(filepath.Join(dir, "extra_test.go"), "package main\n") },
			save:  func(dir string) { write(filepath.Join(dir, "extra.go"), "package main\n") },
			want:  []string{"extra.go"}},
		{name: "a source removed",
			quiet: func(dir string) { write(filepath.Join(dir, "other", "x.go"), "package other\n") },
			save: func(dir string) {
				if err := os.Remove(filepath.Join(dir, "go.sum")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"go.sum"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"main.go", "go.mod", "go.sum"} {
				write(filepath.Join(dir, f), "\n")
			}
			w, err := NewWatcher(20*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			src := &build.Sources{Dirs: []string{dir}}
			for _, f := range []string{"go.mod", "go.sum", "main.go"} {
				src.Files = append(src.Files, filepath.Join(dir, f))
			}
			if err := w.Watch(src); err != nil {
				t.Fatal(err)
			}
			tc.quiet(dir)
			tc.save(dir)
			var want []string
			for _, f := range tc.want {
				want = append(want, filepath.Join(dir, f))
			}
			select {
			case ch := <-w.Changes():
				if !slices.Equal(ch.Files, want) {
					t.Errorf("change %q, want %q", ch.Files, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no change told of %q", want)
			}
		})
	}
}

func TestTrigger(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{nil, ""},
		{[]string{"/m/main.go"}, "main.go"},
		{[]string{"/m/a.go", "/m/b.go"}, "a.go and 1 other"},
		{[]string{"/m/a.go", "/m/b.go", "/m/go.mod"}, "a.go and 2 others"},
	} {
		if got := Trigger(tc.files); got != tc.want {
			t.Errorf("Trigger(%q) = %q, want %q", tc.files, got, tc.want)
		}
	}
}

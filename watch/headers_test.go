package watch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/beamctl/beamctl/build"
)

// TestHeaders checks which saves may change the files a build reads, and
// so have the sources listed again: only those that change a Go file's
// package, imports, build constraints or embed patterns, touch the module
// files, or add or remove a file.
func TestHeaders(t *testing.T) {
	t.Parallel()
	const main = "package main\n\nimport \"fmt\"\n\n//go:embed data.txt\nvar data string\n\nfunc main() { fmt.Println(data) }\n"
	for _, tc := range []struct {
		name  string
		edit  func(dir string) []string
		stale bool
	}{
		{"a body edit", func(dir string) []string {
			return write(t, dir, "main.go", main+"\nfunc init() { _ = 1 }\n")
		}, false},
		{"an embedded file's content", func(dir string) []string {
			return write(t, dir, "data.txt", "other\n")
		}, false},
		{"an import added", func(dir string) []string {
			return write(t, dir, "main.go", "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\n//go:embed data.txt\nvar data string\n\nfunc main() { fmt.Println(data, os.Args) }\n")
		}, true},
		{"an embed pattern", func(dir string) []string {
			return write(t, dir, "main.go", main+"\n//go:embed *.txt\nvar more string\n")
		}, true},
		{"a build constraint", func(dir string) []string {
			return write(t, dir, "main.go", "//go:build linux\n\n"+main)
		}, true},
		{"go.mod", func(dir string) []string {
			return write(t, dir, "go.mod", "module example.com/m\n\ngo 1.26\n\nrequire example.com/x v1.0.0\n")
		}, true},
		{"a file not among the sources", func(dir string) []string {
			return write(t, dir, "new.go", "package main\n")
		}, true},
		{"a removed file", func(dir string) []string {
			if err := os.Remove(filepath.Join(dir, "main.go")); err != nil {
				t.Fatal(err)
			}
			return []string{filepath.Join(dir, "main.go")}
		}, true},
		{"a save that does not parse", func(dir string) []string {
			return write(t, dir, "main.go", "package main\n\nimport \"fmt\n")
		}, true},
		{"a rerun asked for", func(string) []string { return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := &build.Sources{Dirs: []string{dir}}
			for _, name := range []string{"data.txt", "go.mod", "main.go"} {
				src.Files = append(src.Files, filepath.Join(dir, name))
			}
			write(t, dir, "go.mod", "module example.com/m\n\ngo 1.26\n")
			write(t, dir, "data.txt", "data\n")
			write(t, dir, "main.go", main)
			h := newHeaders(src)
			if got := h.changed(tc.edit(dir)); got != tc.stale {
				t.Errorf("changed = %v, want %v", got, tc.stale)
			}
		})
	}
}

func write(t *testing.T, dir, name, text string) []string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{p}
}

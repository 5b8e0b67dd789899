package build

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestSources lists the sources of a pipeline whose main package imports
// a package of its module, which embeds a file and has a file for arm64
// alone: each platform's build gets its own files, the module's go.mod
// and go.sum, and nothing of the module cache.
func TestSources(t *testing.T) {
	t.Parallel()
	mod := t.TempDir()
	gomod, err := os.ReadFile("../examples/linestats/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module example.com/src"))
	gosum, err := os.ReadFile("../examples/linestats/go.sum")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": string(gomod),
		"go.sum": string(gosum),
		"main.go": `package main

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"example.com/src/lib"
)

func main() { beam.Init(); _ = lib.Data }
`,
		"main_test.go": "package main\n",
		"notes.txt":    "not a source\n",
		"lib/lib.go": `package lib

import _ "embed"

//go:embed data.txt
var Data string
`,
		"lib/lib_arm64.go": "package lib\n",
		"lib/data.txt":     "data\n",
		"unused/unused.go": "package unused\n",
	}
	for name, text := range files {
		p := filepath.Join(mod, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(mod, n))
		}
		slices.Sort(out)
		return out
	}
	host := HostPlatform()
	amd64 := Platform{OS: "linux", Arch: "amd64"}
	arm64 := Platform{OS: "linux", Arch: "arm64"}
	common := []string{"go.mod", "go.sum", "main.go", "lib/lib.go", "lib/data.txt"}
	for _, tc := range []struct {
		target Platform
		want   []string
	}{
		{amd64, common},
		{arm64, append(slices.Clone(common), "lib/lib_arm64.go")},
	} {
		if host.Arch == "arm64" {
			// The launcher's platform counts too.
			tc.want = append(slices.Clone(common), "lib/lib_arm64.go")
		}
		t.Run(tc.target.String(), func(t *testing.T) {
			t.Parallel()
			src, err := Options{Package: ".", WorkDir: mod, Targets: []Platform{tc.target}, CacheDir: t.TempDir()}.Sources(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if want := abs(tc.want...); !slices.Equal(src.Files, want) {
				t.Errorf("Files = %q\nwant %q", src.Files, want)
			}
			if want := abs(".", "lib"); !slices.Equal(src.Dirs, want) {
				t.Errorf("Dirs = %q, want %q", src.Dirs, want)
			}
		})
	}
}

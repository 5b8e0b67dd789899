package build_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/beamctl/beamctl/build"
)

// writeModule writes files (path to content) as a module in a directory
// of its own.
func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCGOPackage finds the package a pure Go build cannot compile: one
// that imports "C" with no fallback, among the imports, a test's imports
// or the package itself, and not the standard library's net or a package
// of the module with a pure Go file in its cgo file's place.
func TestCGOPackage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc, err := build.FindToolchain(ctx, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	cFile := func(pkg string) string {
		return "package " + pkg + "\n\n// int one(void) { return 1; }\nimport \"C\"\n\nfunc One() int { return int(C.one()) }\n"
	}
	for _, c := range []struct {
		name      string
		files     map[string]string
		withTests bool
		want      string
	}{
		{"a dependency", map[string]string{
			"main.go":      "package main\n\nimport \"example.com/m/cdep\"\n\nfunc main() { cdep.One() }\n",
			"cdep/cdep.go": cFile("cdep"),
		}, false, "example.com/m/cdep"},
		{"the package itself, cgo files only", map[string]string{
			"main.go": "package main\n\nfunc main() { One() }\n",
			"c.go":    cFile("main"),
		}, false, "example.com/m"},
		{"a fallback", map[string]string{
			"main.go":         "package main\n\nimport (\n\t\"net\"\n\t\"example.com/m/either\"\n)\n\nfunc main() { _ = net.IPv4len; either.One() }\n",
			"either/c.go":     cFile("either"),
			"either/nocgo.go": "//go:build !cgo\n\npackage either\n\nfunc One() int { return 1 }\n",
		}, false, ""},
		{"a test's import", map[string]string{
			"main.go":      "package main\n\nfunc main() {}\n",
			"main_test.go": "package main\n\nimport (\n\t\"testing\"\n\t\"example.com/m/cdep\"\n)\n\nfunc TestOne(t *testing.T) { cdep.One() }\n",
			"cdep/cdep.go": cFile("cdep"),
		}, true, "example.com/m/cdep"},
		{"a test's import, tests not asked for", map[string]string{
			"main.go":      "package main\n\nfunc main() {}\n",
			"main_test.go": "package main\n\nimport (\n\t\"testing\"\n\t\"example.com/m/cdep\"\n)\n\nfunc TestOne(t *testing.T) { cdep.One() }\n",
			"cdep/cdep.go": cFile("cdep"),
		}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.files["go.mod"] = "module example.com/m\n\ngo 1.26\n"
			dir := writeModule(t, c.files)
			got, err := tc.CGOPackage(ctx, dir, build.Platform{OS: "linux", Arch: "arm64"}, c.withTests, []string{"-trimpath"}, "", ".")
			if err != nil || got != c.want {
				t.Errorf("CGOPackage = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

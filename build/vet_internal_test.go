package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildVCS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"default", []string{"HOME=/h"}, "auto"},
		{"GOFLAGS without it", []string{"GOFLAGS=-trimpath -mod=mod"}, "auto"},
		{"set off", []string{"GOFLAGS=-trimpath -buildvcs=false"}, "false"},
		{"bare flag", []string{"GOFLAGS=--buildvcs"}, "true"},
		{"later GOFLAGS wins", []string{"GOFLAGS=-buildvcs=false", "GOFLAGS=-trimpath"}, "auto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildVCS(tc.env); got != tc.want {
				t.Errorf("buildVCS(%q) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}

// TestVetSharesTheBuildsCompile builds a main package in a git repository
// as a build does, then lists it as the check's go/packages does: the
// list must find the package's compile in the build cache, not compile it
// again (go list -x shows each compile it runs).
func TestVetSharesTheBuildsCompile(t *testing.T) {
	t.Parallel()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("needs git")
	}
	dir := t.TempDir()
	// A file of its own makes the package's compile new to the build cache.
	files := map[string]string{
		"go.mod":  "module example.com/stamped\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { println(" + `"` + filepath.Base(dir) + `"` + ") }\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"}} {
		if out, err := exec.CommandContext(ctx, git, append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	env := append(os.Environ(), "GOFLAGS=-trimpath")
	o := Options{WorkDir: dir, Toolchain: &Toolchain{Env: env}}
	vo := o.vetOptions(HostPlatform(), ".")
	run := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "go", args...)
		// The environment the build and the check both run go with.
		cmd.Dir, cmd.Env = dir, vo.Env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run(append(append([]string{"build"}, o.compileFlags()...), "-o", filepath.Join(t.TempDir(), "bin"), ".")...)
	// go/packages' own flags come first; the check's follow and win.
	list := append([]string{"list", "-x", "-e", "-json=Export", "-compiled=true", "-export=true", "-deps=true", "-buildvcs=false", "-pgo=off"}, vo.BuildFlags...)
	out := run(append(list, "--", ".")...)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "/compile ") && strings.Contains(line, "main.go") {
			t.Fatalf("the check's go list compiled the package again:\n%s", line)
		}
	}
}

package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/problem"
)

// allSettings are the settings of every command.
func allSettings() map[string]kind {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	newRootCmd(a)
	return a.keys
}

// command finds the command at path (e.g. "stage") in a new command tree.
func command(t *testing.T, path ...string) *cobra.Command {
	t.Helper()
	root := newRootCmd(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	c, _, err := root.Find(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWording(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd   []string
		field string
		want  string
	}{
		{[]string{"build"}, "Jobs", "--jobs"},
		{[]string{"build"}, "OutDir", "--out"},
		{[]string{"run"}, "CAFile", "--tls-ca"},
		{[]string{"run"}, "Vet", "--vet"},
		{[]string{"worker-pool"}, "Address", "--address"},
		{[]string{"worker-pool"}, "AllowUnverified", "--allow-unverified-worker"},
		{[]string{"boot"}, "MaxArtifactBytes", "--max-artifact-bytes"},
		// A field the command has no flag for is worded as another
		// command's flag, or as the argument that fills it.
		{[]string{"stage"}, "Boot", "beamctl build --boot"},
		{[]string{"build"}, "Build", "PKG"},
		{[]string{"submit"}, "Dist", "DIST"},
		{[]string{"build"}, "NoSuchField", "NoSuchField"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.cmd, " ")+" "+tt.field, func(t *testing.T) {
			if got := wording(command(t, tt.cmd...))(tt.field); got != tt.want {
				t.Errorf("wording(%s) = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
}

// TestErrorWording renders library errors as a command would: the
// settings they name become its flags, wherever in the chain they are.
func TestErrorWording(t *testing.T) {
	t.Parallel()
	_, targetErr := build.ParseTarget("", nil)
	tests := []struct {
		name string
		err  error
		want string
		key  string
	}{
		{"problem", problem.Usagef("fix {Jobs}", "{Jobs} %d is negative", -1).About("Jobs"), "--jobs -1 is negative: fix --jobs", "Jobs"},
		{"wrapped", fmt.Errorf("building: %w", problem.Failf("give one with {CacheDir}", "no cache")), "building: no cache: give one with --cache-dir", ""},
		{"target", fmt.Errorf("checking: %w", targetErr), "checking: target \"\" is empty: give OS/ARCH, e.g. linux/amd64", "Target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problem.Render(tt.err, wording(command(t, "build"))); got != tt.want {
				t.Errorf("rendered %q, want %q", got, tt.want)
			}
			if key, _ := problem.KeyOf(tt.err); key != tt.key {
				t.Errorf("about %q, want %q", key, tt.key)
			}
		})
	}
}

// TestPlaceholdersHaveWords checks that every {Setting} a library names is
// one some command words as a flag or an argument.
func TestPlaceholdersHaveWords(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Dir}} {{join .GoFiles \" \"}}", "github.com/beamctl/beamctl/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	var words []func(string) string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		words = append(words, wording(c))
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	worded := func(field string) bool {
		for _, w := range words {
			if w(field) != field {
				return true
			}
		}
		return false
	}
	re := regexp.MustCompile(`\{([A-Z][A-Za-z0-9]*)\}`)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.Contains(f[0], "/cmd/") || strings.Contains(f[0], "/examples/") || strings.Contains(f[0], "/bench/") {
			continue
		}
		fset := token.NewFileSet()
		for _, name := range f[2:] {
			file, err := parser.ParseFile(fset, filepath.Join(f[1], name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				for _, m := range re.FindAllStringSubmatch(lit.Value, -1) {
					seen++
					if !worded(m[1]) {
						t.Errorf("%s names setting {%s}, which no command's flag or argument fills", fset.Position(lit.Pos()), m[1])
					}
				}
				return true
			})
		}
	}
	if seen == 0 {
		t.Fatal("found no {Setting} in any library: the scan is broken")
	}
}

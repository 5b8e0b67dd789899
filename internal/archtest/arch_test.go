// Package archtest holds the tests that keep beamctl's structure: which
// package may import what, and that libraries give no advice in the CLI's
// terms.
package archtest

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/beamctl/beamctl"
)

const module = "github.com/beamctl/beamctl"

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

// listPackages is go list over the module, with each package's direct
// imports and transitive dependencies.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,GoFiles,Imports,Deps", module+"/...")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

// isCmd reports whether p is a command or its own internal package: the
// only places that speak the CLI.
func isCmd(p string) bool { return rel(p) == "cmd" || strings.HasPrefix(rel(p), "cmd/") }

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}

var (
	cliLibs  = []string{"github.com/spf13/cobra", "github.com/spf13/viper", "github.com/spf13/pflag"}
	prism    = []string{"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"}
	docker   = []string{"github.com/docker/docker/client", "github.com/moby/moby/client"}
	flowPkgs = []string{module + "/build", module + "/submit", module + "/stage", module + "/capture", module + "/launch", module + "/loopback", module + "/embeddedrunner", module + "/dataflow"}
	// graphviz compiles its WebAssembly module in a package init: every
	// program that links it pays for that at start.
	graphviz  = []string{"github.com/goccy/go-graphviz"}
	svgEntry  = module + "/cmd/beamctl-svg"
	bootEntry = module + "/cmd/beamctl-boot"
	// bootPkgs are the library packages beamctl-boot is made of: the
	// container contract and how its worker starts.
	bootPkgs = []string{"boot", "wrap"}
)

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.Contains(p.ImportPath, "/testdata/") || strings.HasPrefix(rel(p.ImportPath), "examples") {
			continue
		}
		for _, imp := range p.Imports {
			if hasPrefixAny(imp, cliLibs...) && !isCmd(p.ImportPath) {
				t.Errorf("%s imports %s: only cmd/... may speak the CLI", rel(p.ImportPath), imp)
			}
			if hasPrefixAny(imp, prism...) && rel(p.ImportPath) != "embeddedrunner" {
				t.Errorf("%s imports prism: only embeddedrunner may", rel(p.ImportPath))
			}
			if hasPrefixAny(imp, module+"/cmd") && !isCmd(p.ImportPath) {
				t.Errorf("%s imports %s: libraries must not depend on commands", rel(p.ImportPath), imp)
			}
		}
		if p.ImportPath != svgEntry && p.ImportPath != module+"/graph/svg" {
			for _, d := range p.Deps {
				if hasPrefixAny(d, graphviz...) {
					t.Errorf("%s depends on %s: only beamctl-svg may, for its package init's cost at every start", rel(p.ImportPath), d)
				}
			}
		}
		if slices.Contains(bootPkgs, rel(p.ImportPath)) || p.ImportPath == bootEntry {
			for _, d := range p.Deps {
				if hasPrefixAny(d, prism...) || hasPrefixAny(d, docker...) || hasPrefixAny(d, flowPkgs...) {
					t.Errorf("%s depends on %s: the container contract and the worker wrappers must stay small (standard library, gRPC, Beam's model protos)", rel(p.ImportPath), d)
				}
			}
		}
	}
}

// TestLibraryErrorsNameNoFlags reads every error a library constructs:
// fmt.Errorf, errors.New, problem constructors and composite literals of
// error types. None may name a command-line flag or a BEAMCTL_ variable;
// advice names settings as {Field} placeholders, which each caller words.
func TestLibraryErrorsNameNoFlags(t *testing.T) {
	flagRE := regexp.MustCompile(`(^|[^-\w])--?[a-z][a-z0-9]*(-[a-z0-9]+)+\b|(^|[\s(])--[a-z]|BEAMCTL_`)
	checked := 0
	for _, p := range listPackages(t) {
		if isCmd(p.ImportPath) || strings.Contains(p.ImportPath, "/testdata/") ||
			hasPrefixAny(rel(p.ImportPath), "examples", "bench", "internal/archtest") {
			continue
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if !constructsError(n) {
					return true
				}
				ast.Inspect(n, func(m ast.Node) bool {
					lit, ok := m.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						return true
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						return true
					}
					checked++
					if flagRE.MatchString(s) {
						t.Errorf("%s: error text %q names a flag or environment variable: name the setting as {Field} instead", fset.Position(lit.Pos()), s)
					}
					return true
				})
				return false
			})
		}
	}
	if checked < 100 {
		t.Fatalf("only %d error strings checked: the scan is not finding the library's errors", checked)
	}
}

// constructsError reports whether n builds an error value.
func constructsError(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.CallExpr:
		switch fn := n.Fun.(type) {
		case *ast.SelectorExpr:
			x, ok := fn.X.(*ast.Ident)
			if !ok {
				return false
			}
			name := x.Name + "." + fn.Sel.Name
			return slices.Contains([]string{"fmt.Errorf", "errors.New", "problem.Usagef", "problem.Failf"}, name)
		case *ast.Ident:
			// Package-local helpers that build errors by name.
			return strings.HasSuffix(fn.Name, "Error") || strings.HasSuffix(fn.Name, "error") || strings.HasSuffix(fn.Name, "errorf")
		}
	case *ast.CompositeLit:
		var name string
		switch t := n.Type.(type) {
		case *ast.Ident:
			name = t.Name
		case *ast.SelectorExpr:
			name = t.Sel.Name
		}
		return strings.HasSuffix(name, "Error")
	}
	return false
}

// TestErrorScanCatches keeps the scan honest: it must find a flag in each
// way a library could build an error.
func TestErrorScanCatches(t *testing.T) {
	src := `package x
func f() {
	_ = fmt.Errorf("set --out to a directory")
	_ = errors.New("use --tls")
	_ = problem.Usagef("give --cache-dir", "x")
	_ = &OutputError{Reason: "set BEAMCTL_CACHE_DIR"}
	_ = dialError(e, k, c, "check --endpoint")
}`
	f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	ast.Inspect(f, func(n ast.Node) bool {
		if constructsError(n) {
			found++
			return false
		}
		return true
	})
	if found != 5 {
		t.Errorf("the scan saw %d error constructions, want 5", found)
	}
}

// TestBootEntrypointSize builds the image entrypoint as a release would, for
// the platforms Beam runners run workers on: it must stay small.
func TestBootEntrypointSize(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles")
	}
	const limit = 20_000_000 // 20 MB
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "beamctl-boot")
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/beamctl-boot")
			cmd.Dir = root(t)
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("beamctl-boot linux/%s: %.1f MB", arch, float64(fi.Size())/1e6)
			if fi.Size() > limit {
				t.Errorf("beamctl-boot for linux/%s is %d bytes, over %d", arch, fi.Size(), limit)
			}
		})
	}
}

// bootModules are the modules, besides beamctl's own, that beamctl-boot
// may use: build --boot compiles its embedded source inside the pipeline's
// module, whose go.sum always has these, as the Beam SDK needs them.
// Another would make that build fail offline for every user.
var bootModules = []string{
	"github.com/apache/beam/sdks/v2/go/pkg/beam/model",
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"google.golang.org/genproto/googleapis/rpc",
	"golang.org/x/sys",
	"golang.org/x/net",
	"golang.org/x/text",
}

// TestBootSourceIsComplete checks beamctl.BootSource against what
// beamctl-boot is built from, on each platform a worker may target: a
// package missing from it breaks build --boot, and one embedded for nothing
// only grows beamctl.
func TestBootSourceIsComplete(t *testing.T) {
	own := map[string]bool{}
	for _, target := range []string{"linux/amd64", "linux/arm64", "darwin/arm64", "windows/amd64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./"+beamctl.BootMain)
		cmd.Dir = root(t)
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list for %s: %v", target, err)
		}
		for _, p := range strings.Fields(string(out)) {
			switch {
			case p == module || strings.HasPrefix(p, module+"/"):
				own[rel(p)] = true
			case !hasPrefixAny(p, bootModules...):
				t.Errorf("beamctl-boot for %s depends on %s, which a pipeline's module need not have", target, p)
			}
		}
	}
	embedded := map[string]bool{}
	err := fs.WalkDir(beamctl.BootSource, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Ext(p) == ".go" && !strings.HasSuffix(p, "_test.go") {
			embedded[path.Dir(p)] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !own[beamctl.BootMain] {
		t.Fatalf("go list did not list %s itself: %v", beamctl.BootMain, own)
	}
	for p := range own {
		if !embedded[p] {
			t.Errorf("beamctl-boot imports %s, which beamctl.BootSource does not embed", p)
		}
	}
	for p := range embedded {
		if !own[p] {
			t.Errorf("beamctl.BootSource embeds %s, which beamctl-boot does not import", p)
		}
	}
}

// TestTestModulesShareBuildCache keeps the modules of the examples and
// test pipelines on the versions beamctl's own module selects, for every
// module their binaries are built from: otherwise each of their builds
// compiles the Beam SDK and all below it afresh, per platform, on every
// machine whose build cache is cold. (The old-Beam pipeline is old on
// purpose.)
func TestTestModulesShareBuildCache(t *testing.T) {
	t.Parallel()
	versions := func(dir, pkg string) map[string]string {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", pkg)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list in %s: %v", dir, err)
		}
		m := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if p, v, ok := strings.Cut(l, " "); ok && v != "" {
				m[p] = v
			}
		}
		return m
	}
	main := versions(filepath.Join(root(t), "examples", "wordcount"), ".")
	for dir, pkg := range map[string]string{
		"examples/linestats": ".",
		"examples/snippets":  ".",
		// The module the checks load Beam's own examples from.
		"testdata/beamexamples": "github.com/apache/beam/sdks/v2/go/examples/wordcount",
	} {
		found := versions(filepath.Join(root(t), dir), pkg)
		if len(found) < 10 {
			t.Errorf("%s: %s builds from %d modules, which is not a Beam pipeline", dir, pkg, len(found))
		}
		for p, v := range found {
			if w, ok := main[p]; ok && w != v {
				t.Errorf("%s builds with %s %s, beamctl's module with %s: go get %s@%s there", dir, p, v, w, p, w)
			}
		}
	}
}

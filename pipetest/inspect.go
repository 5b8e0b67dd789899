// Package pipetest runs a pipeline's Go tests as a cluster would run their
// pipelines: every pipeline a test submits goes to the embedded runner, and
// its DoFns run in workers that are separate processes of the same test
// binary (a test binary whose TestMain calls ptest.Main is a Beam worker
// too, through beam.Init), natively or under qemu-user for another
// architecture. go test itself builds, runs and reports; beamctl is the
// program it executes each test binary with (go test -exec), which serves
// that binary's workers.
package pipetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Package is a package under test, as go list sees it.
type Package struct {
	ImportPath string
	Dir        string
	// HasTests says the package has test files.
	HasTests bool
	// UsesBeam says the package or its tests import the Beam SDK.
	UsesBeam bool
	// Workers says its TestMain calls ptest.Main (or MainRet, or their
	// WithDefault forms), so its test binary serves as its own worker.
	Workers bool
}

const (
	beamSDK   = "github.com/apache/beam/sdks/v2/go/pkg/beam"
	ptestPath = "github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

// WorkersFix is what a package whose tests cannot have separate workers
// needs.
const WorkersFix = "add func TestMain(m *testing.M) { ptest.Main(m) } to its tests"

// List finds the packages patterns name, from dir, with go and env as the
// tests will be built (so that build constraints select the same files).
func List(ctx context.Context, goBin string, env []string, dir string, buildFlags, patterns []string) ([]Package, error) {
	args := append([]string{"list", "-e", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles,Imports,TestImports,XTestImports,Error"}, buildFlags...)
	args = append(args, patterns...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, &ListError{Output: msg}
		}
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Dir                    string
			TestGoFiles, XTestGoFiles          []string
			Imports, TestImports, XTestImports []string
			Error                              *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list's output: %w", err)
		}
		if p.Error != nil {
			return nil, &ListError{Output: p.Error.Err}
		}
		pkg := Package{ImportPath: p.ImportPath, Dir: p.Dir, HasTests: len(p.TestGoFiles)+len(p.XTestGoFiles) > 0}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if imp == beamSDK || strings.HasPrefix(imp, beamSDK+"/") {
				pkg.UsesBeam = true
			}
		}
		for _, f := range slices.Concat(p.TestGoFiles, p.XTestGoFiles) {
			ok, err := callsPtestMain(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			pkg.Workers = pkg.Workers || ok
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

// ListError is go's own account of packages it cannot load.
type ListError struct{ Output string }

func (e *ListError) Error() string { return e.Output }

// Invalid marks the patterns as the user's to correct.
func (e *ListError) Invalid() bool { return true }

// ptestMains are the ptest functions whose callers parse flags and call
// beam.Init, which turns a test binary started as a worker into one.
var ptestMains = []string{"Main", "MainWithDefault", "MainRet", "MainRetWithDefault"}

// callsPtestMain reports whether the file's TestMain makes the test binary
// a worker when started as one: it calls one of ptestMains, or parses the
// flags and calls beam.Init itself.
func callsPtestMain(path string) (bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		// The compile reports it, with go's own wording.
		return false, nil
	}
	names := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	calls := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name != "TestMain" || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && names[x.Name] != "" {
						calls[names[x.Name]+"."+sel.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	for _, m := range ptestMains {
		if calls[ptestPath+"."+m] {
			return true, nil
		}
	}
	return calls["flag.Parse"] && calls[beamSDK+".Init"], nil
}

package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/beamctl/beamctl/internal/problem"
)

// BeamSDKModule is the module path of the Beam Go SDK.
const BeamSDKModule = "github.com/apache/beam/sdks/v2"

// beamPackage is what every Beam Go pipeline imports, directly or not.
const beamPackage = BeamSDKModule + "/go/pkg/beam"

// Package is a resolved pipeline main package.
type Package struct {
	// ImportPath is the package's import path.
	ImportPath string `json:"importPath"`
	// Dir is the package's source directory.
	Dir string `json:"-"`
	// Name is the program name: the last import path element that is not
	// a major version suffix.
	Name string `json:"name"`
	// Module describes the module that holds the package.
	Module Module `json:"module"`

	// runDir and arg are where and how go build must be invoked to name
	// this package: a directory argument is built from inside its own
	// module, so a pipeline in another module builds with its own go.mod.
	runDir string
	arg    string
	// cgoFiles and goFiles are the package's files that import "C" and
	// those that do not, as a build with cgo takes them.
	cgoFiles, goFiles []string
}

// Module is what beamctl reads from the pipeline's go.mod.
type Module struct {
	Path string `json:"path"`
	// GoMod is the path of the go.mod file.
	GoMod string `json:"-"`
	// Dir is the module root directory.
	Dir string `json:"-"`
	// GoDirective is the go.mod "go" line.
	GoDirective string `json:"goDirective,omitempty"`
	// BeamVersion is the Beam SDK version the module requires, after
	// replace directives; empty when replaced by a local directory.
	BeamVersion string `json:"beamVersion"`
	// BeamReplace is the local directory or module the SDK is replaced by.
	BeamReplace string `json:"beamReplace,omitempty"`
}

// PackageError is a PKG argument that does not name a buildable Beam
// pipeline.
type PackageError struct {
	Pkg, Reason, Fix string
}

func (e *PackageError) Error() string {
	return fmt.Sprintf("package %s %s: %s", e.Pkg, e.Reason, e.Fix)
}

// Invalid marks the error as a problem with the user's input.
func (e *PackageError) Invalid() bool { return true }

// Invalid marks the error as a problem with the user's input.
func (e *TargetError) Invalid() bool { return true }

// isDirArg reports whether pkg is meant as a directory rather than an
// import path, following the go command's own rule.
func isDirArg(pkg string) bool {
	return pkg == "." || pkg == ".." || filepath.IsAbs(pkg) ||
		strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") ||
		strings.HasPrefix(pkg, `.\`) || strings.HasPrefix(pkg, `..\`)
}

// ResolvePackage finds the package pkg names, relative to workDir, and
// checks that it is a main package that uses Beam.
func ResolvePackage(ctx context.Context, tc *Toolchain, workDir, pkg string) (*Package, error) {
	if pkg == "" {
		pkg = "."
	}
	runDir, arg := workDir, pkg
	if isDirArg(pkg) || dirExists(filepath.Join(workDir, pkg)) && !strings.Contains(pkg, ".") {
		dir := pkg
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(workDir, pkg)
		}
		fi, err := os.Stat(dir)
		switch {
		case err != nil:
			return nil, &PackageError{Pkg: pkg, Reason: "not found: no such directory", Fix: "give the pipeline's directory, e.g. ./pipeline, or its import path"}
		case !fi.IsDir():
			return nil, &PackageError{Pkg: pkg, Reason: "is a file, not a directory", Fix: "give the directory that holds the pipeline's main package"}
		}
		if _, err := ReadManifest(dir); err == nil {
			return nil, &PackageError{Pkg: pkg, Reason: "is a build output (it has " + ManifestFile + "), not a pipeline's source",
				Fix: "give the pipeline's directory, or submit the build output as it is"}
		}
		runDir, arg = dir, "."
	}
	goMod := findGoMod(runDir)
	if goMod == "" {
		return nil, &PackageError{Pkg: pkg, Reason: "is not in a Go module: no go.mod in " + runDir + " or any parent",
			Fix: "run `go mod init` in the pipeline's directory and `go get " + BeamSDKModule + "`"}
	}
	if arg == "." {
		if p, ok, err := resolveDir(tc, pkg, runDir, goMod); ok || err != nil {
			return p, err
		}
	}

	var lp struct {
		Dir, ImportPath, Name string
		Module                *struct{ Path, Dir, GoMod, GoVersion string }
		Imports               []string
		CgoFiles, GoFiles     []string
		Error                 *struct{ Err string }
	}
	// Listed as a cgo build sees it, so that a pipeline whose own files
	// import "C" resolves, and a build without cgo can refuse it by name.
	out, err := tc.output(ctx, runDir, []string{"CGO_ENABLED=1"}, "list", "-e", "-json=Dir,ImportPath,Name,Module,Imports,CgoFiles,GoFiles,Error", arg)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &lp); err != nil {
		return nil, fmt.Errorf("reading go list output for %s: %w", pkg, err)
	}
	if lp.Error != nil {
		msg := problem.FirstLine(lp.Error.Err)
		switch {
		case strings.Contains(msg, "cannot find") || strings.Contains(msg, "is not in std") ||
			strings.Contains(msg, "no required module provides") || strings.Contains(msg, "does not contain package") ||
			strings.Contains(msg, "directory not found") || strings.Contains(msg, "outside main module"):
			msg = strings.TrimSuffix(strings.TrimSpace(msg), "; to add it:")
			return nil, &PackageError{Pkg: pkg, Reason: "not found (" + msg + ")", Fix: "give the pipeline's directory, e.g. ./pipeline, or an import path of the current module"}
		case strings.Contains(msg, "no Go files"):
			return nil, &PackageError{Pkg: pkg, Reason: "has no Go files", Fix: "give the directory that holds the pipeline's main package"}
		}
		return nil, &PackageError{Pkg: pkg, Reason: "cannot be loaded: " + msg, Fix: "fix the error above, then run beamctl again"}
	}
	if err := checkMainBeam(pkg, lp.Name, lp.Imports); err != nil {
		return nil, err
	}
	if lp.Module == nil || lp.Module.GoMod == "" {
		return nil, &PackageError{Pkg: pkg, Reason: "is not in a Go module", Fix: "run `go mod init` in the pipeline's directory"}
	}
	mod, err := ReadModule(lp.Module.GoMod)
	if err != nil {
		return nil, err
	}
	return &Package{
		ImportPath: lp.ImportPath,
		Dir:        lp.Dir,
		Name:       programName(lp.ImportPath, lp.Dir),
		Module:     *mod,
		runDir:     runDir,
		arg:        arg,
		cgoFiles:   lp.CgoFiles,
		goFiles:    lp.GoFiles,
	}, nil
}

// resolveDir reads a package directory without the go command, which
// would load the whole import graph of a Beam pipeline (a large share of
// a no-op rebuild). ok is false when the directory needs the go
// command's rules: a workspace, or files it cannot classify.
func resolveDir(tc *Toolchain, pkg, dir, goMod string) (_ *Package, ok bool, _ error) {
	if findGoWork(dir, tc.Environ()) {
		return nil, false, nil
	}
	mod, err := ReadModule(goMod)
	if err != nil {
		return nil, true, err
	}
	rel, err := filepath.Rel(mod.Dir, dir)
	if err != nil || mod.Path == "" {
		return nil, false, nil
	}
	ctxt := build.Default
	ctxt.CgoEnabled = true
	bp, err := ctxt.ImportDir(dir, 0)
	if err != nil {
		// Let the go command explain it in its own words.
		return nil, false, nil
	}
	if err := checkMainBeam(pkg, bp.Name, bp.Imports); err != nil {
		return nil, true, err
	}
	importPath := path.Join(mod.Path, filepath.ToSlash(rel))
	return &Package{
		ImportPath: importPath,
		Dir:        dir,
		Name:       programName(importPath, dir),
		Module:     *mod,
		runDir:     dir,
		arg:        ".",
		cgoFiles:   bp.CgoFiles,
		goFiles:    bp.GoFiles,
	}, true, nil
}

// checkMainBeam rejects packages that are not programs or not pipelines.
// A pipeline's main package imports the SDK itself: it builds the graph
// and calls beamx.Run.
func checkMainBeam(pkg, name string, imports []string) error {
	if name != "main" {
		return &PackageError{Pkg: pkg, Reason: "is package " + name + ", not package main",
			Fix: "beamctl builds programs: give the pipeline's main package"}
	}
	for _, imp := range imports {
		if imp == beamPackage || strings.HasPrefix(imp, beamPackage+"/") {
			return nil
		}
	}
	return &PackageError{Pkg: pkg, Reason: "does not use the Beam Go SDK (" + beamPackage + ")",
		Fix: "beamctl builds Beam pipelines: give a main package that builds its pipeline with beam and runs it with beamx.Run"}
}

// findGoWork reports whether a go.work applies to dir, as the go command
// would find it.
func findGoWork(dir string, env []string) bool {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOWORK="); ok {
			return v != "off" && v != ""
		}
	}
	for {
		if fileExists(filepath.Join(dir, "go.work")) {
			return true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

// ReadModule reads a go.mod: its module path, go directive and the Beam SDK
// version it requires, honouring replace directives.
func ReadModule(goMod string) (*Module, error) {
	data, err := os.ReadFile(goMod)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", goMod, err)
	}
	f, err := modfile.Parse(goMod, data, nil)
	if err != nil {
		return nil, &PackageError{Pkg: filepath.Dir(goMod), Reason: "has a malformed go.mod (" + problem.FirstLine(err.Error()) + ")", Fix: "fix " + goMod}
	}
	m := &Module{GoMod: goMod, Dir: filepath.Dir(goMod)}
	if f.Module != nil {
		m.Path = f.Module.Mod.Path
	}
	if f.Go != nil {
		m.GoDirective = f.Go.Version
	}
	for _, r := range f.Require {
		if r.Mod.Path == BeamSDKModule {
			m.BeamVersion = r.Mod.Version
		}
	}
	if m.Path == BeamSDKModule {
		m.BeamVersion = "(devel)"
	}
	// A versioned replace applies only to that version; an unversioned one
	// to all, so look for the exact match first.
	var rep *modfile.Replace
	for _, r := range f.Replace {
		if r.Old.Path != BeamSDKModule {
			continue
		}
		if r.Old.Version == m.BeamVersion {
			rep = r
			break
		}
		if r.Old.Version == "" {
			rep = r
		}
	}
	if rep != nil {
		if rep.New.Version != "" {
			m.BeamReplace = module.Version{Path: rep.New.Path, Version: rep.New.Version}.String()
			m.BeamVersion = rep.New.Version
		} else {
			m.BeamReplace = rep.New.Path
			m.BeamVersion = ""
		}
	}
	return m, nil
}

// programName is what go build would name the binary: the last import
// path element, skipping a major version suffix such as /v2.
func programName(importPath, dir string) string {
	p := importPath
	if prefix, major, ok := module.SplitPathVersion(p); ok && major != "" && strings.HasPrefix(major, "/") {
		p = prefix
	}
	if elem := path.Base(p); elem != "." && elem != "/" && elem != "" {
		return elem
	}
	return filepath.Base(dir)
}

func findGoMod(dir string) string {
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return filepath.Join(dir, "go.mod")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// errorLines keeps the lines of go's stderr that say what went wrong,
// dropping the "# pkg" headers go prints before a package's errors.
func errorLines(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(bytes.TrimSpace(b)), "\n") {
		if strings.HasPrefix(l, "# ") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// PackageDir is the directory of the package at import path pkg, as go
// list finds it from the current directory; ok is false when pkg is a
// path on disk or go cannot find it.
func PackageDir(ctx context.Context, pkg string) (dir string, ok bool) {
	if pkg == "" || strings.HasPrefix(pkg, ".") || filepath.IsAbs(pkg) || strings.Contains(pkg, "...") {
		return "", false
	}
	goBin, err := lookPath("go", nil)
	if err != nil {
		return "", false
	}
	tc := &Toolchain{Go: goBin}
	out, err := tc.output(ctx, "", nil, "list", "-f", "{{.Dir}}", "--", pkg)
	if err != nil {
		return "", false
	}
	dir = strings.TrimSpace(string(out))
	// A pattern (all, std) lists several packages: none is the pipeline.
	return dir, dir != "" && !strings.Contains(dir, "\n")
}

var errNoGo = errors.New("the Go toolchain was not found on PATH: install Go (https://go.dev/dl) or add its bin directory to PATH")

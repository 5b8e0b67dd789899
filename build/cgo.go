package build

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/libc"
	"github.com/beamctl/beamctl/internal/problem"
)

// CGOMode says whether the binaries use cgo, and how Linux binaries link
// the C library.
type CGOMode string

const (
	// CGOOff builds with CGO_ENABLED=0: pure Go, no C compiler.
	CGOOff CGOMode = ""
	// CGOStatic links Linux binaries statically, C library included, so
	// that a worker runs on an image without one and under qemu-user
	// without the target's libraries.
	CGOStatic CGOMode = "static"
	// CGODynamic links against the target's shared C library, which the
	// machine or image the worker runs on must provide.
	CGODynamic CGOMode = "dynamic"
)

// resolverTags make the standard library look users and hosts up in Go: a
// static glibc executable cannot load the NSS modules it would otherwise
// use, and every Beam Go binary calls user.Current at start. Dynamic
// builds take them too, so that turning cgo on changes how the
// pipeline's own C links and nothing about how Go resolves names (the
// same as a pure Go worker), and so that static and dynamic builds share
// every compiled package and differ only in the link.
const resolverTags = "osusergo,netgo"

// CGOBuild is what a go command adds to build for one platform with cgo.
type CGOBuild struct {
	// Env sets CGO_ENABLED and CC.
	Env []string
	// Tags are build tags to add; LDFlags, linker flags.
	Tags, LDFlags string
}

// CGOFor is how a go command builds for p with cgo in mode, with the C
// compiler FindCompiler chooses: for go test, which builds as the workers
// are built. It is the zero CGOBuild for CGOOff.
func CGOFor(p Platform, mode CGOMode, settings map[Platform]string, env []string) (CGOBuild, error) {
	if mode == CGOOff {
		return CGOBuild{}, nil
	}
	cc, err := FindCompiler(p, mode, settings, env)
	if err != nil {
		return CGOBuild{}, err
	}
	return cgoBuild(p, mode, cc), nil
}

func cgoBuild(p Platform, mode CGOMode, cc string) CGOBuild {
	b := CGOBuild{Env: []string{"CGO_ENABLED=1", "CC=" + cc}, Tags: resolverTags}
	if mode == CGOStatic && p.OS == "linux" {
		b.LDFlags = "-linkmode=external -extldflags=-static"
	}
	return b
}

// AddTags adds the comma-separated build tags more to tags, each once.
func AddTags(tags, more string) string {
	words := func(s string) []string {
		return slices.DeleteFunc(strings.Split(s, ","), func(s string) bool { return strings.TrimSpace(s) == "" })
	}
	out := words(tags)
	for _, t := range words(more) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return strings.Join(out, ",")
}

// cgoTags are Tags with the tags cgo adds, which are the same for every
// platform (compileFlags are shared).
func (o *Options) cgoTags() string {
	if o.CGO == CGOOff {
		return o.Tags
	}
	return AddTags(o.Tags, cgoBuild(Platform{}, o.CGO, "").Tags)
}

// cgoLDFlags are the linker flags cgo adds for p.
func (o *Options) cgoLDFlags(p Platform) string {
	if o.CGO == CGOOff {
		return ""
	}
	return cgoBuild(p, o.CGO, "").LDFlags
}

// cgoEnv is the environment that builds role's binary for p with cgo, or
// nil for a build without: beamctl-boot stays pure Go whatever the
// pipeline needs.
func (o *Options) cgoEnv(p Platform, role Role) []string {
	if o.CGO == CGOOff || role == RoleBoot {
		return nil
	}
	cc, ok := o.compilers[p]
	if !ok {
		// A check without a build (VetOptions): go's own default
		// compiler stands in for one that cannot be found.
		var env []string
		if o.Toolchain != nil {
			env = o.Toolchain.Environ()
		}
		if cc, _ = FindCompiler(p, o.CGO, o.CC, env); cc == "" {
			return []string{"CGO_ENABLED=1"}
		}
	}
	return cgoBuild(p, o.CGO, cc).Env
}

// CompilerError is a target beamctl has no usable C compiler for.
type CompilerError struct {
	Platform Platform
	// Given is the compiler a setting named, "" when none was.
	Given string
	// Package is the Debian package of the target's cross compiler, ""
	// when Debian has none.
	Package string
}

// SettingKey says the C compiler setting is the one to change.
func (e *CompilerError) SettingKey() string { return "CC" }

func (e *CompilerError) Error() string { return problem.Plain(e.text()) }

// Render words the error with the caller's names for settings.
func (e *CompilerError) Render(name func(string) string) string { return problem.Sub(e.text(), name) }

// Invalid marks the error as a problem with the machine's set-up.
func (e *CompilerError) Invalid() bool { return true }

func (e *CompilerError) text() string { return e.reason() + ": " + e.fix() }

func (e *CompilerError) reason() string {
	if e.Given != "" {
		return fmt.Sprintf("the C compiler {CC} names for %s, %q, is not installed", e.Platform, e.Given)
	}
	return fmt.Sprintf("{CGO} needs a C compiler for %s and none was found", e.Platform)
}

func (e *CompilerError) fix() string {
	p := e.Platform.String()
	if e.Given != "" {
		return "install it, or fix {CC} " + p + "=COMMAND"
	}
	fix := "name one with {CC} " + p + "=COMMAND"
	if e.Package != "" {
		fix = "install Debian's cross compiler (apt-get install " + e.Package + "), put zig on PATH, or " + fix
	}
	return fix
}

// CheckCompiler checks that a cgo build for p finds a C compiler, for
// doctor.
func CheckCompiler(p Platform, mode CGOMode, settings map[Platform]string, env []string) check.Result {
	name := "C compiler " + p.String()
	cc, err := FindCompiler(p, mode, settings, env)
	var ce *CompilerError
	if errors.As(err, &ce) {
		return check.Failure(name, ce.reason(), ce.fix())
	}
	return check.Pass(name, cc)
}

// CGOError is a pipeline that needs cgo, built without it.
type CGOError struct {
	// Package is the first package in the pipeline's imports that
	// imports "C" and has no pure Go fallback.
	Package string
}

// SettingKey says cgo's setting is the one to change.
func (e *CGOError) SettingKey() string { return "CGO" }

func (e *CGOError) Error() string { return problem.Plain(e.text()) }

// Render words the error with the caller's names for settings.
func (e *CGOError) Render(name func(string) string) string { return problem.Sub(e.text(), name) }

// Invalid marks the error as a problem with the build's settings.
func (e *CGOError) Invalid() bool { return true }

func (e *CGOError) text() string {
	return fmt.Sprintf("package %s uses cgo (import \"C\") and the build is pure Go: build with {CGO} and a C compiler for each target", e.Package)
}

// findCompilers chooses a C compiler for each platform built with cgo.
func (o *Options) findCompilers(platforms []Platform) error {
	if o.CGO == CGOOff {
		return nil
	}
	o.compilers = map[Platform]string{}
	env := o.Toolchain.Environ()
	for _, p := range platforms {
		if _, ok := o.compilers[p]; ok {
			continue
		}
		cc, err := FindCompiler(p, o.CGO, o.CC, env)
		if err != nil {
			return err
		}
		o.compilers[p] = cc
	}
	return nil
}

// FindCompiler chooses the C compiler that builds for p with cgo, in
// order: the one settings name for p, else for this machine's platform
// the CC of env, else cc on PATH, else Debian's cross compiler for p
// (aarch64-linux-gnu-gcc), else zig cc for p when zig is on PATH. The
// result is a command line for go's CC.
func FindCompiler(p Platform, mode CGOMode, settings map[Platform]string, env []string) (string, error) {
	cc, ok := settings[p]
	if !ok && p.Variant != "" {
		cc, ok = settings[Platform{OS: p.OS, Arch: p.Arch}]
	}
	if ok {
		if !commandExists(cc, env) {
			return "", &CompilerError{Platform: p, Given: cc}
		}
		return cc, nil
	}
	if p.OS == HostPlatform().OS && p.Arch == HostPlatform().Arch {
		if cc := getenv(env, "CC"); cc != "" && commandExists(cc, env) {
			return cc, nil
		}
		for _, name := range []string{"cc", "gcc", "clang"} {
			if path, err := lookPath(name, env); err == nil {
				return path, nil
			}
		}
	}
	triple, debian := libc.GNUTriple(p.Arch)
	debian = debian && p.OS == "linux"
	if debian {
		if path, err := lookPath(triple+"-gcc", env); err == nil {
			return path, nil
		}
	}
	if zig, err := lookPath("zig", env); err == nil {
		if t, ok := zigTarget(p, mode); ok && !strings.ContainsAny(zig, " \t'\"") {
			return zig + " cc -target " + t, nil
		}
	}
	e := &CompilerError{Platform: p}
	if debian {
		e.Package = "gcc-" + strings.ReplaceAll(triple, "_", "-")
	}
	return "", e
}

// zigArch is zig's name of each architecture it cross-compiles C for.
var zigArch = map[string]string{
	"386":     "x86",
	"amd64":   "x86_64",
	"arm":     "arm",
	"arm64":   "aarch64",
	"ppc64le": "powerpc64le",
	"riscv64": "riscv64",
	"s390x":   "s390x",
}

// zigTarget is zig's target for p: musl, which links statically, for
// static Linux binaries; glibc for dynamic ones.
func zigTarget(p Platform, mode CGOMode) (string, bool) {
	arch, ok := zigArch[p.Arch]
	if !ok {
		return "", false
	}
	switch p.OS {
	case "linux":
		abi := "gnu"
		if mode == CGOStatic {
			abi = "musl"
		}
		if p.Arch == "arm" {
			abi += "eabihf"
		}
		return arch + "-linux-" + abi, true
	case "darwin":
		return arch + "-macos", true
	case "windows":
		return arch + "-windows-gnu", true
	}
	return "", false
}

// commandExists reports whether the first word of a CC command line is a
// program: a path, or a name on env's PATH.
func commandExists(cmd string, env []string) bool {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return false
	}
	if strings.ContainsRune(f[0], filepath.Separator) {
		fi, err := os.Stat(f[0])
		return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
	}
	_, err := lookPath(f[0], env)
	return err == nil
}

func getenv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, key+"="); ok {
			v = s
		}
	}
	return v
}

// cgoPackage is the first package in pkg's imports for p that cannot be
// built without cgo, "" when there is none.
func (o *Options) cgoPackage(ctx context.Context, pkg *Package, p Platform) (string, error) {
	return o.Toolchain.CGOPackage(ctx, pkg.runDir, p, false, o.compileFlags(), o.Tags, pkg.arg)
}

// CGOPackage is the first package in the imports of patterns, listed in
// dir with flags, for p, that cannot be built without cgo, "" when there
// is none; withTests counts the packages' tests' imports too. A package
// with cgo files counts only when it has no file that builds without cgo
// in their place, as the standard library's net and os/user have.
func (tc *Toolchain) CGOPackage(ctx context.Context, dir string, p Platform, withTests bool, flags []string, tags string, patterns ...string) (string, error) {
	env := append(compileEnv(p), "CGO_ENABLED=1")
	args := []string{"list", "-deps", "-e"}
	if withTests {
		args = append(args, "-test")
	}
	args = append(append(args, flags...), "-f", "{{if and .CgoFiles (not .Standard) (not .ForTest)}}{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \" \"}}{{end}}")
	out, err := tc.output(ctx, dir, env, append(args, patterns...)...)
	if err != nil {
		return "", err
	}
	// Only newlines are trimmed: a package of cgo files alone ends its
	// line with an empty list after the tab.
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 && needsCGO(f[1], p, tags, strings.Fields(f[2])) {
			return f[0], nil
		}
	}
	return "", nil
}

// needsCGO reports whether the package in dir, which has cgo files and,
// built with cgo, the Go files withCgo, has no file that builds without
// cgo in their place.
func needsCGO(dir string, p Platform, tags string, withCgo []string) bool {
	ctxt := build.Default
	ctxt.GOOS, ctxt.GOARCH = p.OS, p.Arch
	ctxt.CgoEnabled = false
	ctxt.BuildTags = slices.DeleteFunc(strings.Split(tags, ","), func(s string) bool { return s == "" })
	bp, err := ctxt.ImportDir(dir, 0)
	var noGo *build.NoGoError
	if err != nil && !errors.As(err, &noGo) {
		// Broken in another way: the compiler says how.
		return false
	}
	for _, g := range bp.GoFiles {
		if !slices.Contains(withCgo, g) {
			return false
		}
	}
	return true
}

// CGOBinary is how a binary built with cgo links the C library.
type CGOBinary struct {
	// Link is "static" or "dynamic".
	Link string `json:"link"`
	// Interpreter is a dynamic Linux binary's loader, such as
	// /lib/ld-linux-aarch64.so.1.
	Interpreter string `json:"interpreter,omitempty"`
	// GLIBC is the oldest glibc that provides every symbol version the
	// binary imports, such as "2.34".
	GLIBC string `json:"glibc,omitempty"`
	// CC is the C compiler it was built with.
	CC string `json:"cc"`
}

// describeCGO reads how the binary at path, built with cgo for p, links
// the C library.
func (o *Options) describeCGO(path string, p Platform) (*CGOBinary, error) {
	d := &CGOBinary{Link: "dynamic", CC: o.compilers[p]}
	n, err := libc.ReadFile(path)
	switch {
	case errors.Is(err, libc.ErrNotELF):
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("reading how %s links the C library: %w", filepath.Base(path), err)
	}
	if n.Static() {
		d.Link = "static"
	}
	d.Interpreter, d.GLIBC = n.Interpreter, n.GLIBC
	return d, nil
}

package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
)

// OldestTestedBeam is the oldest Beam Go SDK beamctl's tests build, run
// and stage a pipeline with (cmd/beamctl/testdata/beam260). Pipelines on
// SDKs from it to the embedded runner's pass the check; others warn.
const OldestTestedBeam = "v2.60.0"

// ColdBuildBytes is about what a cold build of a Beam pipeline for two
// platforms writes to the caches.
const ColdBuildBytes = 1 << 30

// CheckToolchain finds the Go toolchain; the returned one is nil when the
// check failed.
func CheckToolchain(ctx context.Context, env []string) (check.Result, *Toolchain) {
	tc, err := FindToolchain(ctx, env)
	if err != nil {
		fix := "install Go 1.26 or newer (https://go.dev/dl) and put it on PATH"
		if !errors.Is(err, errNoGo) {
			fix = "repair or reinstall the Go toolchain on PATH"
		}
		return check.Failure("go toolchain", err.Error(), fix), nil
	}
	detail := tc.Version + " at " + tc.Go
	for _, kv := range tc.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok && v != "" {
			detail += " (GOFLAGS=" + v + ")"
		}
	}
	return check.Pass("go toolchain", detail), tc
}

// CheckPipeline checks the pipeline package: that it is a Beam main
// package, that the toolchain is new enough for its module, that its
// modules can be loaded, and how far its Beam SDK is from beamVersion (the
// embedded runner's).
func CheckPipeline(ctx context.Context, tc *Toolchain, workDir, pkg, beamVersion string) []check.Result {
	p, err := ResolvePackage(ctx, tc, workDir, pkg)
	if err != nil {
		return []check.Result{check.Failure("pipeline", problem.FirstLine(err.Error()), "give the directory of the pipeline's main package")}
	}
	out := []check.Result{check.Pass("pipeline", fmt.Sprintf("%s (module %s)", p.ImportPath, p.Module.Path))}
	out = append(out, checkGoDirective(tc, p.Module))
	out = append(out, checkModules(ctx, tc, p))
	out = append(out, checkBeamVersion(p.Module, beamVersion))
	return out
}

func checkGoDirective(tc *Toolchain, m Module) check.Result {
	const name = "go version"
	have := strings.TrimPrefix(strings.Fields(tc.Version + " ")[0], "go")
	want := m.GoDirective
	if want == "" || semver.Compare("v"+have, "v"+want) >= 0 {
		return check.Pass(name, fmt.Sprintf("go %s suits the module's go %s", have, want))
	}
	local := false
	for _, kv := range tc.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOTOOLCHAIN="); ok {
			local = v == "local" || strings.HasSuffix(v, "+local")
		}
	}
	detail := fmt.Sprintf("the module needs go %s, the toolchain is go %s", want, have)
	if local {
		return check.Failure(name, detail+" and GOTOOLCHAIN forbids switching", "install Go "+want+" or newer, or set GOTOOLCHAIN=auto")
	}
	return check.Warning(name, detail+"; go will download go "+want+" on first use", "install Go "+want+" to build offline")
}

// checkModules loads the pipeline's import graph: a proxy of off with
// modules missing from the cache, or a broken go.sum, fails here rather
// than minutes into a build.
func checkModules(ctx context.Context, tc *Toolchain, p *Package) check.Result {
	const name = "modules"
	out, err := tc.output(ctx, p.runDir, nil, "list", "-deps", "-e", "-f", "{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}", p.arg)
	if err != nil {
		return check.Failure(name, problem.FirstLine(err.Error()), "run `go mod download` in the pipeline's module and check GOPROXY/GOFLAGS")
	}
	if msg := strings.TrimSpace(string(out)); msg != "" {
		fix := "run `go mod tidy` in the pipeline's module"
		if strings.Contains(msg, "GOPROXY=off") || strings.Contains(msg, "module lookup disabled") {
			fix = "set GOPROXY (e.g. https://proxy.golang.org) or fill the module cache with `go mod download`"
		}
		return check.Failure(name, problem.FirstLine(msg), fix)
	}
	return check.Pass(name, "every package of the pipeline loads")
}

func checkBeamVersion(m Module, runner string) check.Result {
	const name = "beam sdk"
	switch {
	case m.BeamReplace != "" && m.BeamVersion == "":
		return check.Warning(name, "replaced by "+m.BeamReplace+": its version is unknown", "compare it with the embedded runner's "+runner+" yourself")
	case m.BeamVersion == "":
		return check.Failure(name, "the module does not require the Beam Go SDK", "go get "+BeamSDKModule)
	}
	detail := fmt.Sprintf("%s; beamctl's embedded runner is %s", m.BeamVersion, runner)
	switch {
	case !semver.IsValid(m.BeamVersion):
		return check.Warning(name, detail+"; the version does not parse", "require a released Beam SDK, e.g. go get "+BeamSDKModule+"@"+runner)
	case semver.Compare(m.BeamVersion, OldestTestedBeam) < 0:
		return check.Warning(name, detail+", older than "+OldestTestedBeam+", the oldest beamctl is tested with",
			"upgrade the pipeline with go get "+BeamSDKModule+"@"+runner)
	case semver.Compare(semver.MajorMinor(m.BeamVersion), semver.MajorMinor(runner)) > 0:
		return check.Warning(name, detail+", newer than the embedded runner",
			"upgrade beamctl, or run on a job server of the pipeline's Beam version")
	}
	return check.Pass(name, detail)
}

// CheckCacheDir checks that dir (default the user cache's beamctl
// directory) can be written and has room for a cold build.
func CheckCacheDir(dir string) check.Result {
	const name = "cache directory"
	if dir == "" {
		root, err := CacheRoot()
		if err != nil {
			return check.Failure(name, errors.Unwrap(err).Error(), "set XDG_CACHE_HOME or HOME, or give a cache directory")
		}
		dir = root
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return check.Failure(name, err.Error(), "give a writable cache directory")
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return check.Failure(name, dir+" is not writable: "+errReason(err), "give a writable cache directory")
	}
	f.Close()
	os.Remove(f.Name())
	if free, ok := freeBytes(dir); ok {
		if free < ColdBuildBytes {
			return check.Warning(name, fmt.Sprintf("%s has %d MB free; a cold build for two platforms needs about %d MB", dir, free>>20, ColdBuildBytes>>20), "free disk space, or give a cache directory on another disk")
		}
		return check.Pass(name, fmt.Sprintf("%s, %d GB free", dir, free>>30))
	}
	return check.Pass(name, dir)
}

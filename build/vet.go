package build

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/vet"
	"github.com/beamctl/beamctl/vet/analyzers"
)

// VetOptions check packages with the launcher's compile settings, so that
// the check loads the dependencies the launcher's build compiled (and the
// build reuses what the check compiled). Patterns default to Package.
func (o Options) VetOptions(patterns ...string) vet.Options {
	return o.vetOptions(HostPlatform(), patterns...)
}

// vetOptions check for platform p: the one whose compile the check's
// go list is to find in the build cache.
func (o Options) vetOptions(p Platform, patterns ...string) vet.Options {
	if len(patterns) == 0 {
		patterns = []string{cmp.Or(o.Package, ".")}
	}
	env := mergeEnv(compileEnv(p), o.cgoEnv(p, RoleLauncher))
	vo := vet.Options{
		Patterns:   patterns,
		WorkDir:    o.WorkDir,
		Env:        append(slices.Clip(os.Environ()), env...),
		BuildFlags: o.compileFlags(),
		Logger:     o.Logger,
	}
	if o.CacheDir != "" {
		vo.CacheDir = filepath.Join(o.CacheDir, "vet")
	} else if root, err := CacheRoot(); err == nil {
		vo.CacheDir = filepath.Join(root, "build", "vet")
	}
	if o.Toolchain != nil && o.Toolchain.Env != nil {
		vo.Env = append(slices.Clip(o.Toolchain.Env), env...)
	}
	// go/packages lists with -buildvcs=false, but a main package's compile
	// depends on the VCS stamp: in a repository the check would compile
	// the package again beside the build's own compile, doubling the cost
	// of every edit. Listing with the build's setting shares the compile.
	vo.BuildFlags = append(vo.BuildFlags, "-buildvcs="+buildVCS(vo.Env))
	return vo
}

// buildVCS is the -buildvcs setting go build runs with in env: GOFLAGS's,
// else go's default.
func buildVCS(env []string) string {
	v := "auto"
	for _, kv := range env {
		flags, ok := strings.CutPrefix(kv, "GOFLAGS=")
		if !ok {
			continue
		}
		v = "auto"
		for _, f := range strings.Fields(flags) {
			name, val, hasVal := strings.Cut(strings.TrimLeft(f, "-"), "=")
			if name != "buildvcs" {
				continue
			}
			v = "true"
			if hasVal {
				v = val
			}
		}
	}
	return v
}

// vetRun is a check that runs beside the compiles.
type vetRun struct {
	done chan struct{}
	err  error
}

// startVet checks the package once start is closed: when the first
// binary's build has compiled the package and its dependencies, so that
// the check loads their export data from the build cache. Started beside
// that compile instead, the check's go list would compile the package a
// second time, which for a pipeline that instantiates the register
// package's generics costs as much as the compile itself. The check loads
// for that binary's platform p, whose export data is then in the cache. Findings cancel
// the other builds through stop, so that a broken pipeline fails fast.
func (o *Options) startVet(ctx context.Context, pkg *Package, p Platform, start <-chan struct{}, stop context.CancelFunc, log *slog.Logger) *vetRun {
	r := &vetRun{done: make(chan struct{})}
	vo := o.vetOptions(p, pkg.Dir)
	vo.Logger = log
	go func() {
		defer close(r.done)
		select {
		case <-start:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			r.err = ctx.Err()
			return
		}
		t := time.Now()
		rep, err := vet.Run(ctx, vo)
		log.Debug("vet", "package", pkg.ImportPath, "elapsed", time.Since(t).Round(time.Millisecond), "error", err)
		switch {
		case err != nil:
			r.err = err
		case len(rep.Findings) > 0:
			r.err = &vet.FindingsError{Findings: rep.Findings}
			stop()
		}
	}()
	return r
}

// result waits for the check and says whether it refuses the build. A
// check that could not run is not the pipeline's fault: it is logged and
// the build goes on; a package that does not type-check is the compile's
// to report.
func (r *vetRun) result(log *slog.Logger) error {
	<-r.done
	var fe *vet.FindingsError
	var pe *vet.PackageError
	switch {
	case r.err == nil:
		return nil
	case errors.As(r.err, &fe):
		return fe
	case errors.As(r.err, &pe), errors.Is(r.err, context.Canceled):
		return nil
	}
	log.Warn("the pipeline checks did not run", "error", r.err)
	return nil
}

// CheckVet runs the pipeline checks of beamctl vet on pkg, for doctor.
func CheckVet(ctx context.Context, tc *Toolchain, workDir, pkg, cacheDir string) check.Result {
	const name = "pipeline checks"
	o := Options{Package: pkg, WorkDir: workDir, Toolchain: tc, CacheDir: cacheDir}
	rep, err := vet.Run(ctx, o.VetOptions())
	var pe *vet.PackageError
	switch {
	case errors.As(err, &pe):
		return check.Failure(name, "the pipeline does not compile: "+problem.FirstLine(pe.Error()), "fix what the compiler says (beamctl build shows all of it)")
	case err != nil:
		return check.Warning(name, "the checks did not run: "+problem.FirstLine(err.Error()), "run beamctl vet -v "+pkg+" to see why")
	case len(rep.Findings) > 0:
		f := rep.Findings[0]
		detail := fmt.Sprintf("%s that would reach the workers, first %s: %s (%s)", vet.Mistakes(len(rep.Findings)), f.Position, f.Message, f.Analyzer)
		return check.Failure(name, detail, "run beamctl vet "+pkg+" for each finding and its fix")
	}
	names := make([]string, len(analyzers.All))
	for i, a := range analyzers.All {
		names[i] = a.Name
	}
	return check.Pass(name, "no mistake found by "+strings.Join(names, ", "))
}

package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/beamctl/beamctl/internal/problem"
)

type job struct {
	bin  Binary
	args []string
	env  []string
	// tmp holds the build's work directory.
	tmp      string
	cacheOut string
}

// plan decides the file name, go build arguments and reuse location of one
// binary.
func (o *Options) plan(pkg *Package, role Role, p Platform, tmp string) *job {
	name := fmt.Sprintf("%s-%s-%s", pkg.Name, role, p.Suffix())
	if p.OS == "windows" {
		name += ".exe"
	}
	args := append([]string{"build"}, o.compileFlags()...)
	ldflags := o.LDFlags
	switch {
	case role == RoleWorker && !o.NoStrip && !o.Debug:
		ldflags = strings.TrimSpace("-s -w " + ldflags)
	case role == RoleLauncher && o.Local && !o.Debug:
		// As go run links: no symbol table or DWARF, which only debuggers
		// read and which cost link time. Stack traces still name functions.
		ldflags = strings.TrimSpace("-s -w " + ldflags)
	}
	ldflags = strings.TrimSpace(ldflags + " " + o.cgoLDFlags(p))
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	return o.job(pkg, Binary{Role: role, Platform: p, File: name}, args, pkg.arg, tmp)
}

// planBoot plans beamctl-boot for p, built in the pipeline's module from
// the overlay: stripped, as an image entrypoint needs no debugger.
func (o *Options) planBoot(pkg *Package, ov *bootOverlay, p Platform, tmp string) *job {
	name := "beamctl-boot-" + p.Suffix()
	if p.OS == "windows" {
		name += ".exe"
	}
	args := []string{"build", "-trimpath", "-overlay", ov.file, "-ldflags", "-s -w"}
	return o.job(pkg, Binary{Role: RoleBoot, Platform: p, File: name}, args, ov.importPath, tmp)
}

// compileFlags are the go build flags that decide how packages compile,
// as opposed to how binaries link.
func (o *Options) compileFlags() []string {
	flags := []string{"-trimpath"}
	if tags := o.cgoTags(); tags != "" {
		flags = append(flags, "-tags", tags)
	}
	if o.Debug {
		flags = append(flags, "-gcflags", "all=-N -l")
	} else if o.GCFlags != "" {
		flags = append(flags, "-gcflags", o.GCFlags)
	}
	return flags
}

// compileEnv is the environment go builds for p with.
func compileEnv(p Platform) []string {
	env := append(p.Env(), "CGO_ENABLED=0")
	if p.Arch != "arm" {
		env = append(env, "GOARM=")
	}
	if p.Arch != "amd64" {
		env = append(env, "GOAMD64=")
	} else if p.Variant == "" {
		env = append(env, "GOAMD64=v1")
	}
	return env
}

// BuildEnv is the environment go builds for p with, as workers are
// built; race builds need cgo, which the race detector's runtime uses.
func (p Platform) BuildEnv(race bool) []string {
	env := compileEnv(p)
	if race {
		env = append(env, "CGO_ENABLED=1")
	}
	return env
}

// job completes a go build of target for bin.Platform.
func (o *Options) job(pkg *Package, bin Binary, args []string, target, tmp string) *job {
	p := bin.Platform
	env := mergeEnv(compileEnv(p), o.cgoEnv(p, bin.Role))

	// The key names a stable output path per (package, platform, flags):
	// go build skips the link only when -o names an existing, current file.
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%q\x00%q\x00%s", pkg.Module.Dir, pkg.ImportPath, pkg.Dir, bin.Role, p, args, env, target)
	key := hex.EncodeToString(h.Sum(nil))[:24]
	cacheOut := filepath.Join(o.CacheDir, key, bin.File)
	args = append(args, "-o", cacheOut, target)
	return &job{
		bin:      bin,
		args:     args,
		env:      env,
		tmp:      tmp,
		cacheOut: cacheOut,
	}
}

// buildPlan is what a build will make: a go build per binary, and the
// manifest that will describe them.
type buildPlan struct {
	jobs []*job
	// alsoWorker are the targets the launcher serves as the worker of.
	alsoWorker []Platform
	base       Manifest
}

// planBuild plans a go build for each binary of pkg.
func (o *Options) planBuild(pkg *Package) (*buildPlan, error) {
	// Go replaces an output it relinks by renaming it into place only when
	// its work directory shares the output's filesystem; otherwise it
	// rewrites the file in place, which would change a published binary
	// that is a hard link to it.
	tmp := filepath.Join(o.CacheDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, problem.Failf("give a writable directory with {CacheDir}", "creating the build cache %s: %v", o.CacheDir, err).Wrap(err)
	}
	pl := &buildPlan{base: Manifest{
		Schema:      ManifestSchema,
		Name:        pkg.Name,
		Package:     pkg.ImportPath,
		Module:      pkg.Module.Path,
		GoDirective: pkg.Module.GoDirective,
		BeamVersion: pkg.Module.BeamVersion,
		BeamReplace: pkg.Module.BeamReplace,
		GoVersion:   o.Toolchain.Version,
		Flags: BuildFlags{Tags: o.Tags, LDFlags: o.LDFlags, GCFlags: o.GCFlags, Debug: o.Debug,
			Strip: !o.NoStrip && !o.Debug, Local: o.Local, Trimpath: true, CGO: o.CGO != CGOOff, CGOLink: string(o.CGO)},
	}}
	if !o.NoLauncher {
		pl.jobs = append(pl.jobs, o.plan(pkg, RoleLauncher, HostPlatform(), tmp))
	}
	for _, t := range o.Targets {
		if o.Local && t == HostPlatform() && !o.NoLauncher {
			pl.alsoWorker = append(pl.alsoWorker, t)
			continue
		}
		pl.jobs = append(pl.jobs, o.plan(pkg, RoleWorker, t, tmp))
	}
	if o.Boot {
		ov, err := layBootSource(pkg.Module, o.CacheDir)
		if err != nil {
			return nil, err
		}
		for _, t := range o.Targets {
			pl.jobs = append(pl.jobs, o.planBoot(pkg, ov, t, tmp))
		}
	}
	return pl, nil
}

// manifest describes the built binaries.
func (pl *buildPlan) manifest() *Manifest {
	m := pl.base
	for _, j := range pl.jobs {
		m.Binaries = append(m.Binaries, j.bin)
	}
	// The launcher serves as the host's worker: the same file, listed in
	// the manifest under both roles.
	for _, p := range pl.alsoWorker {
		w := pl.jobs[0].bin
		w.Role, w.Platform = RoleWorker, p
		m.Binaries = append(m.Binaries, w)
	}
	return &m
}

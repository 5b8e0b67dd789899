// Package build cross-compiles a Beam Go pipeline: a launcher for the host
// and a worker per target platform, concurrently, reusing outputs whose
// inputs did not change, and describes the result in a manifest.
package build

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
)

// Options configure a build.
type Options struct {
	// Package is the pipeline's main package: a directory or an import
	// path of the module in WorkDir. Default ".".
	Package string
	// WorkDir is where Package is resolved from. Default: the current
	// directory.
	WorkDir string
	// Targets are the worker platforms. Default linux/amd64.
	Targets []Platform
	// OutDir receives the binaries and manifest.json. Default "dist".
	OutDir string
	// Tags, LDFlags and GCFlags pass through to go build.
	Tags, LDFlags, GCFlags string
	// Debug builds without optimisations or inlining, for debuggers, and
	// keeps worker symbols.
	Debug bool
	// NoStrip keeps the symbol table and DWARF in workers.
	NoStrip bool
	// Force rebuilds every binary even if it is up to date.
	Force bool
	// Local builds for a run on this machine, where build time is the
	// user's waiting time: a target that is the host's platform gets no
	// worker of its own, since the launcher serves as that worker (a Beam
	// Go binary is both), and the launcher is linked without symbols or
	// DWARF, as go run does, unless Debug asks for a debugger. Release
	// builds leave it off.
	Local bool
	// Boot also builds beamctl-boot, the entrypoint of worker images, for
	// each target, from beamctl's own source inside the pipeline's module
	// graph.
	Boot bool
	// NoLauncher builds no launcher: for worker images, which hold none,
	// a link the size of a worker's saved.
	NoLauncher bool
	// Vet checks the pipeline for mistakes that would reach its workers
	// (package vet) while it compiles: findings fail the build with a
	// *vet.FindingsError, and nothing is published.
	Vet bool
	// Jobs bounds concurrent go builds. Default: the number of CPUs.
	Jobs int
	// CacheDir holds the reusable outputs. Default: the user cache dir.
	CacheDir string
	// Toolchain builds the binaries. Default: go on PATH.
	Toolchain *Toolchain
	// Logger receives debug detail. Default: discard.
	Logger *slog.Logger
	// OnEvent, if set, is told of each binary's progress. It is called
	// from several goroutines, never concurrently.
	OnEvent func(Event)
	// Digests hashes the binaries, and learns their digests for the rest
	// of the run. Default: a new cache.
	Digests *digest.Cache
}

// State is where a binary's build is.
type State string

const (
	Waiting   State = "waiting"
	Compiling State = "compiling"
	// Cached means the binary was up to date and not relinked.
	Cached State = "cached"
	Done   State = "done"
	Failed State = "failed"
)

// Event reports a change in one binary's build.
type Event struct {
	File     string
	Role     Role
	Platform Platform
	State    State
	Size     int64
	Elapsed  time.Duration
}

// CompileError is a go build that failed; Output holds go's own messages.
type CompileError struct {
	File     string
	Platform Platform
	Output   string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("building %s for %s failed:\n%s", e.File, e.Platform, e.Output)
}

// OutputError is an output directory beamctl cannot write.
type OutputError struct{ Dir, Reason string }

func (e *OutputError) Error() string { return problem.Plain(e.text()) }

// Render words the error with the caller's names for settings.
func (e *OutputError) Render(name func(string) string) string { return problem.Sub(e.text(), name) }

func (e *OutputError) text() string {
	return fmt.Sprintf("{OutDir} %s %s: choose a directory you can write to with {OutDir}", e.Dir, e.Reason)
}

// Invalid marks the error as a problem with the user's input.
func (e *OutputError) Invalid() bool { return true }

type job struct {
	bin  Binary
	args []string
	env  []string
	// tmp holds the build's work directory.
	tmp      string
	cacheOut string
}

// CacheRoot is beamctl's directory in the user cache: it holds the build
// outputs (build/), compressed image layers (layers/) and pinned tools
// (tools/).
func CacheRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", problem.Failf("give a cache directory with {CacheDir}", "finding a cache directory: %v", err).Wrap(err)
	}
	return filepath.Join(dir, "beamctl"), nil
}

// CacheOut is an output directory in the build cache, one per package and
// working directory, for builds whose outputs no one publishes, such as a
// run's: they then never replace a directory that beamctl build filled
// for a release.
func (o Options) CacheOut() (string, error) {
	cache := o.CacheDir
	if cache == "" {
		root, err := CacheRoot()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(root, "build")
	}
	wd := o.WorkDir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	h := sha256.Sum256([]byte(wd + "\x00" + o.Package))
	return filepath.Join(cache, "out", hex.EncodeToString(h[:])[:24]), nil
}

// OutPath is the absolute directory Build publishes to: OutDir (default
// "dist") resolved against WorkDir (default the current directory).
func (o Options) OutPath() (string, error) {
	dir := cmp.Or(o.OutDir, "dist")
	if filepath.IsAbs(dir) {
		return dir, nil
	}
	wd := o.WorkDir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	return filepath.Join(wd, dir), nil
}

// Build builds the pipeline and publishes it to OutDir. On any error,
// OutDir is left as it was.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Jobs < 0 {
		return nil, problem.Usagef("give a positive number of concurrent builds, or 0 for one per CPU", "{Jobs} %d is negative", o.Jobs)
	}
	if o.Jobs == 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Digests == nil {
		o.Digests = digest.NewCache()
	}
	if o.OutDir == "" {
		o.OutDir = "dist"
	}
	if o.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		o.WorkDir = wd
	}
	outDir, err := o.OutPath()
	if err != nil {
		return nil, err
	}
	if err := checkWritable(o.OutDir, outDir); err != nil {
		return nil, err
	}
	if len(o.Targets) == 0 {
		o.Targets = []Platform{{OS: "linux", Arch: "amd64"}}
	}
	if o.CacheDir == "" {
		root, err := CacheRoot()
		if err != nil {
			return nil, err
		}
		o.CacheDir = filepath.Join(root, "build")
	}
	tc := o.Toolchain
	if tc == nil {
		var err error
		if tc, err = FindToolchain(ctx, nil); err != nil {
			return nil, err
		}
	}

	pkg, err := ResolvePackage(ctx, tc, o.WorkDir, o.Package)
	if err != nil {
		return nil, err
	}
	log.Debug("resolved package", "package", pkg.ImportPath, "dir", pkg.Dir, "module", pkg.Module.Path,
		"beam", pkg.Module.BeamVersion, "go", tc.Version)

	// Go replaces an output it relinks by renaming it into place only when
	// its work directory shares the output's filesystem; otherwise it
	// rewrites the file in place, which would change a published binary
	// that is a hard link to it.
	tmp := filepath.Join(o.CacheDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, problem.Failf("give a writable directory with {CacheDir}", "creating the build cache %s: %v", o.CacheDir, err).Wrap(err)
	}

	m := &Manifest{
		Schema:      ManifestSchema,
		Name:        pkg.Name,
		Package:     pkg.ImportPath,
		Module:      pkg.Module.Path,
		GoDirective: pkg.Module.GoDirective,
		BeamVersion: pkg.Module.BeamVersion,
		BeamReplace: pkg.Module.BeamReplace,
		GoVersion:   tc.Version,
		Flags: BuildFlags{Tags: o.Tags, LDFlags: o.LDFlags, GCFlags: o.GCFlags, Debug: o.Debug,
			Strip: !o.NoStrip && !o.Debug, Local: o.Local, Trimpath: true},
	}
	var jobs []*job
	if !o.NoLauncher {
		jobs = append(jobs, o.plan(pkg, RoleLauncher, HostPlatform(), tmp))
	}
	var alsoWorker []Platform
	for _, t := range o.Targets {
		if o.Local && t == HostPlatform() && !o.NoLauncher {
			alsoWorker = append(alsoWorker, t)
			continue
		}
		jobs = append(jobs, o.plan(pkg, RoleWorker, t, tmp))
	}
	if o.Boot {
		ov, err := layBootSource(pkg.Module, o.CacheDir)
		if err != nil {
			return nil, err
		}
		for _, t := range o.Targets {
			jobs = append(jobs, o.planBoot(pkg, ov, t, tmp))
		}
	}

	var mu sync.Mutex
	emit := func(e Event) {
		if o.OnEvent == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		o.OnEvent(e)
	}
	for _, j := range jobs {
		emit(Event{File: j.bin.File, Role: j.bin.Role, Platform: j.bin.Platform, State: Waiting})
	}
	// Concurrent go builds each default to one compile per CPU; sharing
	// the CPUs out instead keeps a cold build from oversubscribing them.
	concurrent := min(o.Jobs, len(jobs))
	p := compileParallelism(concurrent, runtime.NumCPU(), tc.environ())
	if p > 0 {
		for _, j := range jobs {
			j.args = append(j.args[:1:1], append([]string{"-p", fmt.Sprint(p)}, j.args[1:]...)...)
		}
	}
	if avail, ok := availableMemory(); ok {
		// Added after planning: the collector's settings are not part of
		// a binary's cache key, as they change nothing in it.
		if gc := toolGCEnv(tc.environ(), concurrent*cmp.Or(p, runtime.NumCPU()), avail); gc != nil {
			for _, j := range jobs {
				j.env = append(j.env, gc...)
			}
		}
	}
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	var checked *vetRun
	firstDone := make(chan struct{})
	vctx, vstop := context.WithCancel(ctx)
	defer vstop()
	if o.Vet && len(jobs) > 0 {
		checked = o.startVet(vctx, pkg, jobs[0].bin.Platform, firstDone, stop, log)
	}
	g, gctx := errgroup.WithContext(bctx)
	g.SetLimit(o.Jobs)
	for i, j := range jobs {
		g.Go(func() error {
			err := o.run(gctx, tc, pkg, j, emit, log)
			if i == 0 {
				if err != nil {
					// The compile failed: its errors say more than a check.
					vstop()
				}
				close(firstDone)
			}
			return err
		})
	}
	err = g.Wait()
	if err != nil && bctx.Err() == nil {
		vstop()
	}
	if checked != nil {
		if verr := checked.result(log); verr != nil {
			return nil, verr
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	for _, j := range jobs {
		m.Binaries = append(m.Binaries, j.bin)
	}
	// The launcher serves as the host's worker: the same file, listed in
	// the manifest under both roles.
	for _, p := range alsoWorker {
		w := jobs[0].bin
		w.Role, w.Platform = RoleWorker, p
		m.Binaries = append(m.Binaries, w)
	}
	if err := publish(ctx, outDir, m, jobs, log); err != nil {
		return nil, err
	}
	// The rest of the run trusts these digests while the files stay as
	// published, instead of hashing the binaries again.
	for _, b := range m.Binaries {
		if err := o.Digests.Record(filepath.Join(outDir, b.File), digest.Sum{SHA256: b.SHA256, Size: b.Size}); err != nil {
			log.Debug("binary changed after it was published", "file", b.File, "error", err)
		}
	}
	return m, nil
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
	if o.Tags != "" {
		flags = append(flags, "-tags", o.Tags)
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

// job completes a go build of target for bin.Platform.
func (o *Options) job(pkg *Package, bin Binary, args []string, target, tmp string) *job {
	p := bin.Platform
	env := compileEnv(p)

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

func (o *Options) run(ctx context.Context, tc *Toolchain, pkg *Package, j *job, emit func(Event), log *slog.Logger) error {
	start := time.Now()
	ev := Event{File: j.bin.File, Role: j.bin.Role, Platform: j.bin.Platform}
	if err := os.MkdirAll(filepath.Dir(j.cacheOut), 0o755); err != nil {
		return fmt.Errorf("creating the build cache: %w", err)
	}
	if o.Force {
		if err := os.Remove(j.cacheOut); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s to rebuild it: %w", j.cacheOut, err)
		}
	}
	before := readBuildID(j.cacheOut)
	ev.State = Compiling
	emit(ev)
	log.Debug("go build", "file", j.bin.File, "dir", pkg.runDir, "args", j.args, "env", j.env)

	out, err := tc.build(ctx, pkg.runDir, j.env, j.tmp, j.args...)
	ev.Elapsed = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ev.State = Failed
		emit(ev)
		return &CompileError{File: j.bin.File, Platform: j.bin.Platform, Output: relativize(errorLines(out), pkg.runDir, o.WorkDir)}
	}
	sum, size, err := binaryDigest(ctx, j.cacheOut, o.Digests)
	if err != nil {
		return err
	}
	j.bin.SHA256, j.bin.Size = sum, size
	ev.Size = size
	ev.State = Done
	if before != "" && before == readBuildID(j.cacheOut) {
		ev.State = Cached
	}
	emit(ev)
	return nil
}

// compileParallelism is the -p each of n concurrent go builds on cpus
// CPUs gets, or 0 to leave go's default (one build, or the user's own -p
// in GOFLAGS).
func compileParallelism(n, cpus int, env []string) int {
	if n <= 1 {
		return 0
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			for _, f := range strings.Fields(v) {
				if f == "-p" || strings.HasPrefix(f, "-p=") {
					return 0
				}
			}
		}
	}
	return max(1, cpus/n)
}

var goPosRE = regexp.MustCompile(`^(\S+?\.(?:go|s|c|mod)):(\d+)`)

// relativize rewrites go's file positions, which are relative to the
// directory go ran in, to be relative to the user's directory, so they can
// be clicked or pasted.
func relativize(out, runDir, workDir string) string {
	rel, err := filepath.Rel(workDir, runDir)
	if err != nil || rel == "." {
		return out
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if m := goPosRE.FindStringSubmatchIndex(l); m != nil {
			file := l[m[2]:m[3]]
			if !filepath.IsAbs(file) {
				lines[i] = filepath.Join(rel, file) + l[m[3]:]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// checkWritable fails early, before minutes of compiling, when the output
// directory cannot be created or written.
func checkWritable(given, dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return &OutputError{Dir: given, Reason: "is a file, not a directory"}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return &OutputError{Dir: given, Reason: "cannot be used (" + errReason(err) + ")"}
	}
	// The new output is made beside dir and renamed over it, which needs
	// the parent writable; only a mount point is written into instead.
	probe := filepath.Dir(dir)
	if pi, perr := os.Stat(probe); err == nil && perr == nil && !sameDevice(fi, pi) {
		probe = dir
	}
	for {
		fi, err := os.Stat(probe)
		if err == nil {
			if !fi.IsDir() {
				return &OutputError{Dir: given, Reason: "is inside " + probe + ", which is a file"}
			}
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return &OutputError{Dir: given, Reason: "has no existing parent directory"}
		}
		probe = parent
	}
	f, err := os.CreateTemp(probe, ".beamctl-probe-*")
	if err != nil {
		return &OutputError{Dir: given, Reason: "is not writable (" + errReason(err) + ")"}
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Package build cross-compiles a Beam Go pipeline: a launcher for the host
// and a worker per target platform, concurrently, reusing outputs whose
// inputs did not change, and describes the result in a manifest.
package build

import (
	"cmp"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

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
	// Builder names what builds, recorded in the manifest for provenance,
	// e.g. https://github.com/beamctl/beamctl@v1.4.0.
	Builder string
	// NoLauncher builds no launcher: for worker images, which hold none,
	// a link the size of a worker's saved.
	NoLauncher bool
	// Vet checks the pipeline for mistakes that would reach its workers
	// (package vet) while it compiles: findings fail the build with a
	// *vet.FindingsError, and nothing is published.
	Vet bool
	// CGO builds the launcher and workers with cgo, each with a C
	// compiler for its platform (FindCompiler); off by default.
	CGO CGOMode
	// CC names the C compiler of a platform, over the one FindCompiler
	// would find: a command line, such as "zig cc -target
	// aarch64-linux-musl".
	CC map[Platform]string
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

	// compilers are the C compilers chosen for a cgo build, by platform.
	compilers map[Platform]string
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

// SettingKey says the output directory is the setting at fault.
func (e *OutputError) SettingKey() string { return "OutDir" }

func (e *OutputError) Error() string { return problem.Plain(e.text()) }

// Render words the error with the caller's names for settings.
func (e *OutputError) Render(name func(string) string) string { return problem.Sub(e.text(), name) }

func (e *OutputError) text() string {
	return fmt.Sprintf("{OutDir} %s %s: choose a directory you can write to with {OutDir}", e.Dir, e.Reason)
}

// Invalid marks the error as a problem with the user's input.
func (e *OutputError) Invalid() bool { return true }

// CacheRoot is beamctl's directory in the user cache: it holds the build
// outputs (build/), compressed image layers (layers/), pinned tools
// (tools/) and the compiled code of beamctl-svg's renderer (svg/).
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
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	if err := o.defaults(ctx); err != nil {
		return nil, err
	}
	outDir, err := o.OutPath()
	if err != nil {
		return nil, err
	}
	if err := checkWritable(o.OutDir, outDir); err != nil {
		return nil, err
	}
	pkg, err := ResolvePackage(ctx, o.Toolchain, o.WorkDir, o.Package)
	if err != nil {
		return nil, err
	}
	log.Debug("resolved package", "package", pkg.ImportPath, "dir", pkg.Dir, "module", pkg.Module.Path,
		"beam", pkg.Module.BeamVersion, "go", o.Toolchain.Version)
	if o.CGO == CGOOff && len(pkg.cgoFiles) > 0 && needsCGO(pkg.Dir, HostPlatform(), o.Tags, pkg.goFiles) {
		return nil, &CGOError{Package: pkg.ImportPath}
	}
	pl, err := o.planBuild(pkg)
	if err != nil {
		return nil, err
	}
	if err := o.compile(ctx, pkg, pl.jobs, log); err != nil {
		return nil, err
	}
	m := pl.manifest()
	m.Builder = o.Builder
	m.Source = readSource(pl.jobs)
	if err := publish(ctx, outDir, m, pl.jobs, log); err != nil {
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

// defaults fills in what Options leave to Build, and refuses what it
// cannot honour.
func (o *Options) defaults(ctx context.Context) error {
	if o.Jobs < 0 {
		return problem.Usagef("give a positive number of concurrent builds, or 0 for one per CPU", "{Jobs} %d is negative", o.Jobs).About("Jobs")
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
			return err
		}
		o.WorkDir = wd
	}
	if len(o.Targets) == 0 {
		o.Targets = []Platform{{OS: "linux", Arch: "amd64"}}
	}
	if o.CacheDir == "" {
		root, err := CacheRoot()
		if err != nil {
			return err
		}
		o.CacheDir = filepath.Join(root, "build")
	}
	if o.Toolchain == nil {
		tc, err := FindToolchain(ctx, nil)
		if err != nil {
			return err
		}
		o.Toolchain = tc
	}
	switch o.CGO {
	case CGOOff, CGOStatic, CGODynamic:
	default:
		return problem.Usagef("use static or dynamic", "{CGO} %q is not a way to link", string(o.CGO)).About("CGO")
	}
	platforms := o.Targets
	if !o.NoLauncher {
		platforms = append([]Platform{HostPlatform()}, platforms...)
	}
	return o.findCompilers(platforms)
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

// readSource is the VCS stamp go build put into the binaries: the same in
// each, so the first that has one tells.
func readSource(jobs []*job) *Source {
	for _, j := range jobs {
		bi, err := buildinfo.ReadFile(j.cacheOut)
		if err != nil {
			continue
		}
		var src Source
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs":
				src.VCS = s.Value
			case "vcs.revision":
				src.Revision = s.Value
			case "vcs.time":
				src.Time = s.Value
			case "vcs.modified":
				src.Modified = s.Value == "true"
			}
		}
		if src.Revision != "" {
			return &src
		}
	}
	return nil
}

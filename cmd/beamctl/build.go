package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/build"
)

const buildLong = `Build a Beam Go pipeline: a launcher for this machine, which constructs
the pipeline, and a worker for each --target, which runs its DoFns on the
runner's machines.

PKG is the pipeline's main package: a directory (./pipeline) or an import
path of the current module; default ".". Binaries are built with
CGO_ENABLED=0 (with --cgo, CGO_ENABLED=1 and a C compiler per target) and
-trimpath, concurrently, and an unchanged pipeline is not relinked. The
output directory receives

  NAME-launcher-OS-ARCH          the launcher, for this machine
  NAME-worker-OS-ARCH[-VARIANT]  one worker per target (symbols stripped)
  beamctl-boot-OS-ARCH[-VARIANT] with --boot: the worker image entrypoint
  manifest.json                  roles, platforms, sizes and sha256 sums

and is replaced only when every binary built. beamctl-boot is built from
beamctl's own source inside the pipeline's module graph, with its toolchain,
so beamctl stage --image DIST can later make images from the directory
without a Go toolchain.`

// addBuildFlags registers the flags shared by build, stage and config
// view, whose output directory defaults to dist.
func addBuildFlags(f *pflag.FlagSet) {
	addBuildFlagsOut(f, "dist", "output directory")
}

// addBuildFlagsOut registers the build flags with the output directory's
// own default and help.
func addBuildFlagsOut(f *pflag.FlagSet, out, outUsage string) {
	f.String("out", out, outUsage)
	declareSettings(f, fields{"out": {"OutDir"}})
	addCompileFlags(f, "linux/amd64")
}

// addCompileFlags registers the build flags but the output directory, with
// the default target: for graph, whose --out is the file it writes, which
// builds into beamctl's cache, and whose capture runs no worker.
func addCompileFlags(f *pflag.FlagSet, target string) {
	f.StringSlice("target", []string{target}, "worker platform OS/ARCH[/VARIANT], repeatable or comma-separated; \"host\" is this machine")
	f.Int("jobs", 0, "concurrent go builds (default: number of CPUs)")
	f.String("tags", "", "build tags, passed to go build -tags")
	f.String("ldflags", "", "linker flags, passed to go build -ldflags")
	f.String("gcflags", "", "compiler flags, passed to go build -gcflags")
	f.Bool("debug", false, "build for debuggers: no optimisation or inlining (-gcflags=all=-N -l), symbols kept")
	f.Bool("strip", true, "strip symbols and DWARF from workers (-ldflags=-s -w); panics keep function names")
	f.Bool("force", false, "rebuild every binary even if it is up to date")
	f.String("cache-dir", "", "where reusable build outputs are kept (default: the user cache directory)")
	declareSettings(f, fields{"target": {"Target"}, "jobs": {"Jobs"}, "tags": nil, "ldflags": nil,
		"gcflags": nil, "debug": {"Debug"}, "strip": nil, "force": nil, "cache-dir": {"CacheDir"}})
	addVetFlag(f)
	addCGOFlags(f)
}

// addCGOFlags registers --cgo and --cc, on every command that builds a
// pipeline.
func addCGOFlags(f *pflag.FlagSet) {
	f.String("cgo", "off", `build with cgo, a C compiler per target: --cgo links Linux binaries statically, --cgo=dynamic against the target's glibc`)
	// --cgo alone means static: the worker then runs on any Linux image.
	f.Lookup("cgo").NoOptDefVal = string(build.CGOStatic)
	f.StringSlice("cc", nil, "with --cgo, the C compiler for a target, OS/ARCH=COMMAND, repeatable (default: $CC for this machine, else Debian's cross compiler, else zig cc)")
	declareSettings(f, fields{"cgo": {"CGO"}, "cc": {"CC"}})
}

// cgoOptions reads --cgo and --cc.
func (a *app) cgoOptions(flags *pflag.FlagSet, pkg string, known []build.Platform) (build.CGOMode, map[build.Platform]string, error) {
	var mode build.CGOMode
	switch v := a.v.GetString("cgo"); strings.ToLower(v) {
	case "off", "false", "":
	case "static", "true", "on":
		mode = build.CGOStatic
	case "dynamic":
		mode = build.CGODynamic
	default:
		return "", nil, badValue("cgo", "--cgo %q is not a choice: use --cgo (static), --cgo=dynamic or --cgo=off", v)
	}
	// pflag takes --cgo dynamic as --cgo and a package named dynamic.
	if (pkg == "dynamic" || pkg == "static") && a.changed(flags, "cgo") {
		return "", nil, usagef("--cgo takes its value after =: write --cgo=%s", pkg)
	}
	var cc map[build.Platform]string
	for _, s := range a.v.GetStringSlice("cc") {
		target, command, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(command) == "" {
			return "", nil, badValue("cc", "--cc %q is not OS/ARCH=COMMAND: give e.g. --cc linux/arm64=aarch64-linux-gnu-gcc", s)
		}
		p, err := build.ParseTarget(strings.TrimSpace(target), known)
		if err != nil {
			return "", nil, err
		}
		if cc == nil {
			cc = map[build.Platform]string{}
		}
		cc[p] = strings.TrimSpace(command)
	}
	return mode, cc, nil
}

// buildOptions turns the settings into build options, rejecting
// combinations that cannot be honoured.
func (a *app) buildOptions(ctx context.Context, flags *pflag.FlagSet, pkg string) (build.Options, error) {
	v := a.v
	var err error
	o := build.Options{
		Package:  pkg,
		Tags:     v.GetString("tags"),
		LDFlags:  v.GetString("ldflags"),
		GCFlags:  v.GetString("gcflags"),
		Debug:    v.GetBool("debug"),
		NoStrip:  !v.GetBool("strip"),
		Force:    v.GetBool("force"),
		Jobs:     v.GetInt("jobs"),
		CacheDir: v.GetString("cache-dir"),
		Builder:  builderID(),
		Logger:   a.log,
	}
	if o.Debug && v.GetBool("strip") && a.changed(flags, "strip") {
		return o, usagef("--debug and --strip conflict: --debug keeps symbols for the debugger; drop one of them")
	}
	if o.Debug && o.GCFlags != "" {
		return o, usagef("--debug and --gcflags conflict: --debug sets -gcflags=all=-N -l; drop one of them")
	}
	if o.Vet, err = a.vetOn(); err != nil {
		return o, err
	}
	// A command whose --out is no output directory builds into the cache,
	// whatever beamctl.yaml says of out.
	if f := flags.Lookup("out"); f != nil && isSetting(f) {
		o.OutDir = v.GetString("out")
		if o.OutDir == "" && a.changed(flags, "out") {
			return o, badValue("out", "--out is empty: give the output directory, e.g. --out dist")
		}
	}
	tc, err := build.FindToolchain(ctx, nil)
	if err != nil {
		return o, err
	}
	o.Toolchain = tc
	targets, err := build.ParseTargets(v.GetStringSlice("target"), tc.Platforms)
	if err != nil {
		return o, err
	}
	o.Targets = targets
	if o.CGO, o.CC, err = a.cgoOptions(flags, pkg, tc.Platforms); err != nil {
		return o, err
	}
	return o, nil
}

func newBuildCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build [PKG]",
		Short: "Build the launcher for this machine and a worker for each target",
		Long:  buildLong,
		Example: `  beamctl build ./examples/wordcount --target linux/arm64
  beamctl build ./pipeline --target linux/amd64,linux/arm64 --out dist
  beamctl build --output json | jq .binaries`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := a.setupPipeline(cmd, args)
			if err != nil {
				return err
			}
			o, err := a.buildOptions(cmd.Context(), cmd.Flags(), pkg)
			if err != nil {
				return err
			}
			o.Boot = a.v.GetBool("boot")
			m, err := a.runBuild(cmd, o)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(m)
			}
			fmt.Fprintf(a.stdout, "wrote %s\n", filepath.Join(o.OutDir, build.ManifestFile))
			return nil
		},
	}
	addBuildFlags(cmd.Flags())
	cmd.Flags().Bool("boot", false, "also build beamctl-boot, the entrypoint of worker images, for each target")
	declareSettings(cmd.Flags(), fields{"boot": {"Boot"}})
	return cmd
}

// runBuild builds with progress shown on the terminal, or logged.
func (a *app) runBuild(cmd *cobra.Command, o build.Options) (*build.Manifest, error) {
	p := a.newBuildProgress()
	o.OnEvent = p.event
	m, err := build.Build(cmd.Context(), o)
	p.wait()
	return m, err
}

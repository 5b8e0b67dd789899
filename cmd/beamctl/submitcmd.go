package main

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/loopback"
)

const submitLong = `Submit a pipeline that 'beamctl build' built into DIST, without building:
no Go toolchain is needed, so CI can build once and submit many times.

The launcher for this machine and the worker for --target (default: the
only worker in DIST) are taken from DIST/manifest.json and checked against
their sha256 before anything runs. The launcher is run with the arguments
after -- to construct the pipeline, which is submitted as 'beamctl run'
does: to --endpoint, or to the embedded runner.`

func newSubmitCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "submit DIST [flags] [-- PIPELINE ARGS...]",
		Short: "Submit a built pipeline from its output directory, without building",
		Long:  submitLong,
		Example: `  beamctl build ./pipeline --target linux/amd64 --out dist
  beamctl submit dist --endpoint flink-jobserver:8099 -- --input=gs://bucket/in --output=gs://bucket/out`,
		RunE: func(cmd *cobra.Command, args []string) error {
			distArgs, pipelineArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				distArgs, pipelineArgs = args[:dash], args[dash:]
			}
			if len(distArgs) != 1 {
				return usagef("submit takes the build output directory: beamctl submit DIST [-- PIPELINE ARGS]")
			}
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			return a.submitDist(cmd, distArgs[0], pipelineArgs)
		},
	}
	f := cmd.Flags()
	f.StringSlice("target", nil, "worker platform OS/ARCH[/VARIANT] to submit (default: the only worker in DIST)")
	addLaunchFlags(f)
	return cmd
}

func (a *app) submitDist(cmd *cobra.Command, dist string, pipelineArgs []string) error {
	ctx := cmd.Context()
	m, err := build.ReadManifest(dist)
	if err != nil {
		return err
	}
	host := build.HostPlatform()
	launcher, ok := m.Launcher(host)
	if !ok {
		return usagef("%s has no launcher for this machine (%s): run beamctl build on a %s machine, or submit from one that matches its launcher", filepath.Join(dist, build.ManifestFile), host, host)
	}
	workers := m.Workers()
	var known []build.Platform
	for _, w := range workers {
		known = append(known, w.Platform)
	}
	var worker build.Binary
	switch targets := a.v.GetStringSlice("target"); {
	case len(targets) > 1:
		return usagef("submit takes one --target, got %s", strings.Join(targets, ", "))
	case len(targets) == 1:
		p, err := build.ParseTarget(targets[0], known)
		if err != nil {
			return usagef("%s has no worker for %s: it has %s; build one with beamctl build --target %s", dist, targets[0], platformList(known), targets[0])
		}
		i := slices.IndexFunc(workers, func(w build.Binary) bool { return w.Platform == p })
		worker = workers[i]
	case len(workers) == 1:
		worker = workers[0]
	case len(workers) == 0:
		return usagef("%s has no worker: build one with beamctl build --target OS/ARCH", filepath.Join(dist, build.ManifestFile))
	default:
		return usagef("%s has workers for %s: choose one with --target", dist, platformList(known))
	}
	for _, b := range []build.Binary{launcher, worker} {
		if err := verifyBinary(dist, b); err != nil {
			return err
		}
	}

	s, err := a.launchSpec(worker.Platform)
	if err != nil {
		return err
	}
	if s.localWorkers() {
		if _, err := loopback.Emulator(worker.Platform.OS, worker.Platform.Arch); err != nil {
			return &usageError{err.Error()}
		}
	}
	abs, err := filepath.Abs(dist)
	if err != nil {
		return err
	}
	s.launcher = filepath.Join(abs, launcher.File)
	s.worker = filepath.Join(abs, worker.File)
	s.beamVersion = m.BeamVersion
	s.args = pipelineArgs
	return a.launch(ctx, s)
}

// verifyBinary checks a binary of DIST against the manifest, so a
// truncated copy or a swapped file is caught before it runs anywhere.
func verifyBinary(dist string, b build.Binary) error {
	path := filepath.Join(dist, b.File)
	sum, size, err := build.HashFile(path)
	if err != nil {
		return usagef("%s is missing or unreadable (%v): rebuild with beamctl build --out %s", path, unwrapPath(err), dist)
	}
	if sum != b.SHA256 || size != b.Size {
		return usagef("%s does not match manifest.json (sha256 %s, want %s): rebuild with beamctl build --out %s", path, sum, b.SHA256, dist)
	}
	return nil
}

func platformList(ps []build.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func unwrapPath(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

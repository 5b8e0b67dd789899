package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/suggest"
	"github.com/beamctl/beamctl/launch"
)

const submitLong = `Submit a pipeline that 'beamctl build' built into DIST, without building:
no Go toolchain is needed, so CI can build once and submit many times.

The launcher for this machine and the worker for --target (default: the
only worker in DIST) are taken from DIST/manifest.json and checked against
their sha256 before anything runs. The launcher is run with the arguments
after -- to construct the pipeline, which is submitted as 'beamctl run'
does: to --endpoint, to the embedded runner, or with --runner dataflow to
Google Cloud Dataflow through the SDK's own runner (see 'beamctl run').`

func newSubmitCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "submit DIST [flags] [-- PIPELINE ARGS...]",
		Short: "Submit a built pipeline from its output directory, without building",
		Long:  submitLong,
		Example: `  beamctl build ./pipeline --target linux/amd64 --out dist
  beamctl submit dist --endpoint flink-jobserver:8099 -- --input=gs://bucket/in --output=gs://bucket/out
  beamctl submit dist --runner dataflow --project my-project --region us-central1 --staging-location gs://my-bucket/staging --image REPO@sha256:... --dry-run -- --input=gs://bucket/in --output=gs://bucket/out`,
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
	declareSettings(f, fields{"target": {"Target"}})
	addLaunchFlags(f)
	return cmd
}

func (a *app) submitDist(cmd *cobra.Command, dist string, pipelineArgs []string) error {
	s, err := a.launchSpec(cmd.Context())
	if err != nil {
		return err
	}
	s.Dist = dist
	switch targets := a.v.GetStringSlice("target"); {
	case len(targets) > 1:
		return usagef("submit takes one --target, got %s", strings.Join(targets, ", "))
	case len(targets) == 1:
		ps, err := distTargets(dist, targets)
		if err != nil {
			return err
		}
		s.Target = ps[0]
	}
	s.Args = pipelineArgs
	return a.launch(cmd.Context(), s)
}

// distTargets parses targets against the workers DIST has: no toolchain is
// needed to use an output directory.
func distTargets(dist string, targets []string) ([]build.Platform, error) {
	m, err := build.ReadManifest(dist)
	if err != nil {
		return nil, err
	}
	var known []build.Platform
	for _, w := range m.Workers() {
		known = append(known, w.Platform)
	}
	var out []build.Platform
	for _, t := range targets {
		p, err := build.ParseTarget(t, known)
		if err != nil {
			var names []string
			for _, k := range known {
				names = append(names, k.String())
			}
			if near, ok := suggest.Close(t, names, typoEdits); ok {
				return nil, usagef("%s has no worker for %s: did you mean --target %s?", dist, t, near)
			}
			return nil, usagef("%s has no worker for %s: it has %s; build one with beamctl build --target %s", dist, t, launch.PlatformList(known), t)
		}
		out = append(out, p)
	}
	return out, nil
}

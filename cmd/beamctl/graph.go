package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/graph"
	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

const graphLong = `Show the graph of a Beam Go pipeline: the transforms and PCollections of
the pipeline proto a run would submit, composites, coders and windowing
included, as the runner will execute it.

The pipeline is built as by 'beamctl run', for --target (default: this
machine, so that the launcher alone is built), or taken from DIST, a
build output directory, without building; its launcher is run with the
arguments after -- against beamctl's own short-lived Job API on
127.0.0.1, which keeps the pipeline. No job is started, and no runner,
worker or other process is left behind. A JSON graph written earlier
(--format json) is drawn again in another format without building.

Formats (--format):

  text     the composite tree, a transform a line: what it does, the
           PCollections it reads → those it writes, each with its element
           coder (e.g. KV<string,int>); the default
  json     every transform (unique_name, urn, parent, subtransforms,
           inputs, outputs, environment) and PCollection (coder, bounded,
           windowing); see docs/reference/json.md
  dot      Graphviz: leaf transforms as nodes, PCollections as edges
           labelled with their coder, composites as clusters
  mermaid  the same as a Mermaid flowchart, for Markdown on GitHub or GitLab
  svg      the same picture, drawn by beamctl-svg, which comes with
           beamctl (no Graphviz needed)

--depth N draws composites deeper than N as one node each (1: only the
top-level transforms). --out FILE writes the graph to FILE, replacing it
whole, instead of to stdout.

--diff OTHER compares the pipeline with OTHER, a DIST or a JSON graph
written earlier (--format json): the transforms, PCollections and coders
added, removed or changed, for code review and for checking that a job can
be updated in place. It exits 1 when they differ, as diff does.

Exit codes: 0 the graph was written (with --diff: no difference); 1 the
build or the launcher failed (with --diff: the graphs differ); 2 usage.`

func newGraphCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "graph [PKG|DIST|FILE.json] [flags] [-- PIPELINE ARGS...]",
		Short: "Show the pipeline's graph: transforms, PCollections and coders, as text, JSON, DOT, Mermaid or SVG",
		Long:  graphLong,
		Example: `  beamctl graph ./examples/wordcount -- --input=in.txt --output=counts.txt
  beamctl graph ./pipeline --format svg --out pipeline.svg -- --input=in.txt
  beamctl graph ./pipeline --format mermaid --depth 2
  beamctl graph dist --format json --out graph.json -- --input=in.txt
  beamctl graph graph.json --format svg --out graph.svg
  beamctl graph ./pipeline --diff graph.json -- --input=in.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			from, pipelineArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				from, pipelineArgs = args[:dash], args[dash:]
			}
			if len(from) > 1 {
				return usagef("graph takes one package or build output directory, got %q: put pipeline arguments after --", from)
			}
			src := graphSource{args: pipelineArgs}
			switch {
			case len(from) == 1 && isGraphFile(from[0]):
				src.file = from[0]
			case len(from) == 1 && isDist(from[0]):
				src.dist = from[0]
			}
			if src.file != "" && len(pipelineArgs) > 0 {
				return usagef("%s is a graph written earlier: it takes no pipeline arguments", src.file)
			}
			var err error
			if src.file != "" || src.dist != "" {
				err = a.setup(cmd, "")
			} else {
				src.pkg, err = a.setupPipeline(cmd, from)
			}
			if err != nil {
				return err
			}
			o, err := a.graphOptions(cmd.Context(), cmd.Flags())
			if err != nil {
				return err
			}
			var other *graphSource
			if cmd.Flags().Changed("diff") {
				if other, err = diffSource(cmd.Flags(), o, pipelineArgs); err != nil {
					return err
				}
			}
			g, err := a.loadGraph(cmd.Context(), cmd.Flags(), src)
			if err != nil {
				return err
			}
			if other == nil {
				return a.writeGraph(g, o)
			}
			og, err := a.loadGraph(cmd.Context(), cmd.Flags(), *other)
			if err != nil {
				return err
			}
			return a.writeDiff(graph.Compare(og, g), o)
		},
	}
	f := cmd.Flags()
	// The launcher built for this machine is then the worker too: one
	// binary to link, which no capture runs.
	addCompileFlags(f, "host")
	addGraphFlags(f)
	f.String("diff", "", "compare with `OTHER`, a DIST or a JSON graph written earlier, and print what changed (exit 1 if anything did)")
	f.Duration("capture-timeout", capture.DefaultTimeout, "how long the launcher may take to construct the pipeline (0: the default)")
	declareSettings(f, fields{"capture-timeout": {"CaptureTimeout"}})
	return cmd
}

// isGraphFile reports whether arg is a file, which graph reads as a JSON
// graph written earlier: packages and build outputs are directories.
func isGraphFile(arg string) bool {
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

// readGraphFile reads a JSON graph that graph --format json wrote.
func readGraphFile(path string) (*graph.Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%v: give a JSON graph written by beamctl graph --format json", err)
	}
	defer f.Close()
	g, err := graph.ReadJSON(f)
	if err != nil {
		return nil, usagef("%s: %v: give a JSON graph written by beamctl graph --format json", path, err)
	}
	return g, nil
}

// addGraphFlags registers how a graph is written: graph and jobs graph
// share them.
func addGraphFlags(f *pflag.FlagSet) {
	f.String("format", "", "text (the default; json with --output json), json, dot, mermaid or svg")
	f.Int("depth", 0, "draw composites deeper than `N` as one node each (0: every transform)")
	f.String("out", "", "write the graph to `FILE`, whole or not at all, instead of stdout")
	declareFields(f, fields{"format": {"Format"}})
}

// jobGraph writes the graph of a job's pipeline, as the job server holds
// it.
func (a *app) jobGraph(ctx context.Context, f *pflag.FlagSet, conn grpc.ClientConnInterface, job string) error {
	o, err := a.graphOptions(ctx, f)
	if err != nil {
		return err
	}
	p, err := submit.PipelineOf(ctx, conn, job)
	if err != nil {
		return err
	}
	g, err := graph.FromPipeline(p)
	if err != nil {
		return fmt.Errorf("the pipeline of job %s: %w", job, err)
	}
	return a.writeGraph(g, o)
}

// graphOpts are how graph writes what it captured.
type graphOpts struct {
	render graph.RenderOptions
	out    string
}

// graphOptions reads the flags that say how the graph is written. They
// are no settings: out in beamctl.yaml is build's output directory, and a
// format suits one graph, not every one.
func (a *app) graphOptions(ctx context.Context, f *pflag.FlagSet) (graphOpts, error) {
	format, _ := f.GetString("format")
	depth, _ := f.GetInt("depth")
	out, _ := f.GetString("out")
	switch {
	case format == "" && a.json:
		format = string(graph.JSON)
	case format == "":
		format = string(graph.Text)
	}
	names := graphFormats()
	if !slices.Contains(names, format) {
		return graphOpts{}, usagef("--format %q is not a format: use %s", format, strings.Join(names, ", "))
	}
	if depth < 0 {
		return graphOpts{}, usagef("--depth %d is negative: give 0 for every transform, or how many levels of composites to draw", depth)
	}
	if f.Changed("out") && out == "" {
		return graphOpts{}, usagef("--out is empty: give the file to write, e.g. --out pipeline.svg, or leave it out for stdout")
	}
	// Checked before minutes of building.
	if out != "" {
		if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
			return graphOpts{}, usagef("--out %s: directory %s does not exist: create it, or write the graph elsewhere", out, filepath.Dir(out))
		}
		if fi, err := os.Stat(out); err == nil && fi.IsDir() {
			return graphOpts{}, usagef("--out %s is a directory: give the file to write, e.g. --out %s", out, filepath.Join(out, "pipeline."+format))
		}
	}
	o := graphOpts{render: graph.RenderOptions{Format: graph.Format(format), Depth: depth}, out: out}
	if o.render.Format == graph.SVG {
		prog, err := graph.FindSVG()
		if err != nil {
			return o, err
		}
		cache := a.v.GetString("cache-dir")
		if cache == "" {
			if cache, err = build.CacheRoot(); err != nil {
				return o, err
			}
		}
		o.render.DrawSVG = graph.DrawWith(ctx, prog, filepath.Join(cache, "svg"))
	}
	return o, nil
}

// graphSource is where a graph comes from: a JSON file written earlier, a
// build output directory, or else a package to build.
type graphSource struct {
	file, dist, pkg string
	// args are the pipeline's arguments, for a capture.
	args []string
	// other is --diff's: its worker is not --target's.
	other bool
}

// diffSource reads --diff: a build output directory, captured with the
// same arguments, or a JSON graph file.
func diffSource(f *pflag.FlagSet, o graphOpts, args []string) (*graphSource, error) {
	other, _ := f.GetString("diff")
	if o.render.Format != graph.Text && o.render.Format != graph.JSON {
		return nil, usagef("--diff prints what changed as text or json, not --format %s", o.render.Format)
	}
	switch {
	case other == "":
		return nil, usagef("--diff is empty: give a build output directory or a JSON graph written by beamctl graph --format json")
	case isGraphFile(other):
		return &graphSource{file: other}, nil
	case isDist(other):
		return &graphSource{dist: other, args: args, other: true}, nil
	}
	return nil, usagef("--diff %s is neither a build output directory (with manifest.json) nor a JSON graph file: give one written by beamctl build or beamctl graph --format json", other)
}

// loadGraph reads or captures the graph of src.
func (a *app) loadGraph(ctx context.Context, f *pflag.FlagSet, src graphSource) (*graph.Graph, error) {
	if src.file != "" {
		return readGraphFile(src.file)
	}
	var s launch.Spec
	var err error
	switch {
	case src.other:
		s = a.captureSpec()
		s.Dist = src.dist
	case src.dist != "":
		s, err = a.graphDistSpec(f, src.dist)
	default:
		s, err = a.graphBuildSpec(ctx, f, src.pkg)
	}
	if err != nil {
		return nil, err
	}
	s.Args = src.args
	return a.captureGraph(ctx, s)
}

// graphBuildSpec is the capture of a pipeline built from source.
func (a *app) graphBuildSpec(ctx context.Context, flags *pflag.FlagSet, pkg string) (launch.Spec, error) {
	o, err := a.buildOptions(ctx, flags, pkg)
	if err != nil {
		return launch.Spec{}, err
	}
	s := a.captureSpec()
	s.Build = &o
	return s, nil
}

// graphDistSpec is the capture of a pipeline from a build output
// directory.
func (a *app) graphDistSpec(flags *pflag.FlagSet, dist string) (launch.Spec, error) {
	s := a.captureSpec()
	s.Dist = dist
	if a.changed(flags, "target") {
		targets := a.v.GetStringSlice("target")
		if len(targets) > 1 {
			return s, usagef("a graph of %s takes one --target, got %s", dist, strings.Join(targets, ", "))
		}
		ps, err := distTargets(dist, targets)
		if err != nil {
			return s, err
		}
		s.Target = ps[0]
	}
	return s, nil
}

// captureSpec holds the settings of a capture that every source shares.
func (a *app) captureSpec() launch.Spec {
	s := launch.Spec{CaptureTimeout: a.v.GetDuration("capture-timeout")}
	if a.v.GetBool("verbose") {
		s.LauncherOutput = a.stderr
	}
	return s
}

// captureGraph builds (or takes) and captures the pipeline of s, with the
// build's progress shown, and makes its graph.
func (a *app) captureGraph(ctx context.Context, s launch.Spec) (*graph.Graph, error) {
	var bp *buildProgress
	var obs launch.Observer
	if s.Build != nil {
		bp = a.newBuildProgress()
		obs.Build = bp.event
	}
	c, err := launch.Capture(ctx, s, a.launchDeps(), obs)
	if bp != nil {
		bp.wait()
	}
	if err != nil {
		return nil, launchError(err)
	}
	g, err := graph.FromPipeline(c.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("the launcher's pipeline: %w", err)
	}
	return g, nil
}

// writeGraph renders g to --out, whole or not at all, or to stdout.
func (a *app) writeGraph(g *graph.Graph, o graphOpts) error {
	return a.writeOut(o, func(w io.Writer) error { return graph.Render(w, g, o.render) })
}

// writeDiff prints what changed, and exits 1 when something did, as diff
// does: a CI step fails on a change it did not expect.
func (a *app) writeDiff(d *graph.Diff, o graphOpts) error {
	if err := a.writeOut(o, func(w io.Writer) error { return graph.WriteDiff(w, d, o.render.Format) }); err != nil {
		return err
	}
	if !d.Empty() {
		return &codeError{code: exitFailure}
	}
	return nil
}

// writeOut writes what write writes to --out, whole or not at all, or to
// stdout.
func (a *app) writeOut(o graphOpts, write func(io.Writer) error) error {
	if o.out == "" {
		return write(a.stdout)
	}
	if err := atomicfile.Write(o.out, 0o644, write); err != nil {
		return err
	}
	a.log.Debug("wrote the graph", "file", o.out, "format", o.render.Format)
	return nil
}

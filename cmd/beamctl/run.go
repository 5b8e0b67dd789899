package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/submit"
)

const runLong = `Build a Beam Go pipeline and run it on the embedded runner (Beam's prism,
inside beamctl), with its workers on this machine.

The pipeline is built as by 'beamctl build'; its launcher is run with the
arguments after -- to construct the pipeline, which is submitted with the
worker for the first --target. A worker for another architecture (for
example linux/arm64 on an amd64 machine) runs under qemu-user, so the
binary you will ship is the one that runs.

With --debug, the pipeline is built for debuggers and each worker runs
under Delve's headless server (dlv exec --headless), on --debug-addr and
the ports after it, stopped until a debugger attaches and continues it
(--debug-wait=false starts it at once). beamctl prints, for each worker,
how to attach (dlv connect, a VS Code launch.json configuration) and the
pipeline's DoFn transforms. --debug-launcher also runs the launcher under
Delve, so breakpoints in main and in the pipeline's construction hit.

With --watch, the pipeline runs again each time a file its build depends
on is saved: the Go and embedded files of its packages in the main module
(and workspace), go.mod, go.sum and go.work; not the module cache, and not
the files the pipeline writes. Each run rebuilds, runs the launcher again
and submits to the same embedded runner and worker pool, which stay up
between runs. A save while a job runs cancels it first; a save that does
not compile prints the compiler's errors and waits for the next one. On a
terminal, Enter reruns and q quits; Ctrl-C ends the watch (exit 130).
With --output json, every run ends with its result line, which carries
"run" (its number) and "changed" (the files that started it).

With --runner dataflow, the launcher runs with the Beam Go SDK's own
Dataflow runner, given the worker built for --target (and with --image the
worker image by digest), so the SDK builds nothing and guesses no
architecture: an Arm --machine-type (t2a-*, c4a-*, n4a-*), or the SDK's
--worker_machine_type/--machine_type among the pipeline arguments, needs
--target linux/arm64, any other linux/amd64 (exit 2 otherwise). beamctl
prints the job id and console URL and returns (--wait follows the job as
the SDK does); --dry-run prints the job the SDK would submit, without
network access. Credentials are the SDK's (Application Default
Credentials).

Job state changes and messages are printed as they happen, user metrics at
the end. A failed job is told by its cause: where it failed, the SDK's
reason and the fix (for a function no init function registers, the
register call to add); --verbose prints the runner's whole message.

Exit codes: 0 when the job is DONE, 1 when it FAILED, 3 when it
was CANCELLED, 130 when interrupted: Ctrl-C cancels the job and waits, at
most 30s, for the runner to confirm; a second Ctrl-C stops waiting and
exits once beamctl has cleaned up (its workers, temporary directories),
within 10s; a third exits at once.`

func newRunCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [PKG] [flags] [-- PIPELINE ARGS...]",
		Short: "Build a pipeline and run it on the embedded runner, with workers on this machine",
		Long:  runLong,
		Example: `  beamctl run ./examples/wordcount -- --input=examples/wordcount/testdata/input.txt --output=/tmp/counts.txt
  beamctl run ./pipeline --target linux/arm64 -- --input=in.txt --output=out.txt
  beamctl run ./pipeline --debug -- --input=in.txt --output=out.txt
  beamctl run ./pipeline --watch -- --input=in.txt --output=out.txt
  beamctl run ./pipeline --runner dataflow --project my-project --region us-central1 --staging-location gs://my-bucket/staging --target linux/arm64 --machine-type t2a-standard-4 -- --input=gs://my-bucket/in.txt --output=gs://my-bucket/counts`,
		RunE: func(cmd *cobra.Command, args []string) error {
			pkgArgs, pipelineArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				pkgArgs, pipelineArgs = args[:dash], args[dash:]
			}
			if len(pkgArgs) > 1 {
				return usagef("run takes one package, got %q: put pipeline arguments after --", pkgArgs)
			}
			pkg, err := a.setupPipeline(cmd, pkgArgs)
			if err != nil {
				return err
			}
			return a.run(cmd, pkg, pipelineArgs)
		},
	}
	addBuildFlagsOut(cmd.Flags(), "", "output directory (default: one of beamctl's cache, so that a run never replaces what beamctl build published)")
	addLaunchFlags(cmd.Flags())
	addDebugFlags(cmd.Flags())
	cmd.Flags().Bool("watch", false, "run again after each change of the pipeline's sources, on the same embedded runner, until interrupted")
	declareFields(cmd.Flags(), fields{"watch": nil})
	return cmd
}

func (a *app) run(cmd *cobra.Command, pkg string, pipelineArgs []string) error {
	o, err := a.buildOptions(cmd.Context(), cmd.Flags(), pkg)
	if err != nil {
		return err
	}
	s, err := a.launchSpec(cmd.Context())
	if err != nil {
		return err
	}
	s.Build = &o
	s.Args = pipelineArgs
	if s.Debug, err = a.debugSpec(cmd.Flags()); err != nil {
		return err
	}
	if s.Debug != nil && s.Debug.Launcher {
		// The launcher is being debugged: its output is part of that.
		s.LauncherOutput = a.stderr
	}
	if watch, _ := cmd.Flags().GetBool("watch"); watch {
		return a.watch(cmd, s)
	}
	return a.launch(cmd.Context(), s)
}

// printEvent prints a followed job's state changes and messages to
// stderr, as progress: one line each, debug detail only with --verbose.
func (a *app) printEvent(e submit.Event) {
	a.writeEvent(a.stderr, e, eventProgress)
}

// eventStyle is how a job event is printed: as a run's progress, or as
// the output of jobs logs.
type eventStyle int

const (
	// eventProgress hides debug messages without --verbose and keeps each
	// message to one line: the final error has the rest.
	eventProgress eventStyle = iota
	// eventLog prints every message whole, a failure as its cause and
	// fix without --verbose.
	eventLog
)

// writeEvent prints one job event to w, or as a JSON line with --output
// json.
func (a *app) writeEvent(w io.Writer, e submit.Event, style eventStyle) {
	if a.json {
		_ = a.printJSONLine(e)
		return
	}
	verbose := a.v.GetBool("verbose")
	ts := "        " // a past message whose time the job server keeps to itself
	if !e.Time.IsZero() {
		ts = e.Time.Local().Format("15:04:05")
	}
	if e.Kind == submit.EventState {
		fmt.Fprintf(w, "%s  state     %s\n", ts, e.State)
		return
	}
	if style == eventProgress && !verbose && (e.Severity == "debug" || e.Severity == "detailed") {
		return
	}
	text := strings.TrimSpace(e.Text)
	switch {
	case verbose:
	case style == eventProgress && e.Cause != nil:
		// A failure arrives with the whole plan or stack; its cause says
		// what happened, and the final error adds the fix.
		text = e.Cause.Summary()
	case style == eventProgress:
		if first, rest, ok := strings.Cut(text, "\n"); ok {
			text = fmt.Sprintf("%s [%d more lines]", first, strings.Count(rest, "\n")+1)
		}
	case e.Cause != nil:
		// Continued lines line up with the text of the first.
		text = strings.Join(append(causeLines(e.Cause), a.verboseHint(e.Text, e.Cause)...), "\n"+strings.Repeat(" ", 20))
	}
	fmt.Fprintf(w, "%s  %-8s  %s\n", ts, strings.ToUpper(e.Severity), text)
}

// causeLines words a failure's cause: where and why, then the fix.
func causeLines(c *submit.Cause) []string {
	lines := []string{c.Summary()}
	if c.Fix != "" {
		lines = append(lines, "fix: "+c.Fix)
	}
	return lines
}

// verboseHint is the line that tells how to see all a runner said of a
// failure whose cause leaves some of it out.
func (a *app) verboseHint(message string, c *submit.Cause) []string {
	if a.v.GetBool("verbose") || strings.TrimSpace(message) == c.Reason {
		return nil
	}
	return []string{"(--verbose shows the runner's whole message)"}
}

// jobFailure words a failed job for its final error line: the cause, then,
// indented, the fix.
func (a *app) jobFailure(jf *submit.JobFailedError) string {
	if jf.Cause == nil {
		return jf.Error()
	}
	lines := append(causeLines(jf.Cause), a.verboseHint(jf.Message, jf.Cause)...)
	return fmt.Sprintf("job %s failed: %s", jf.JobID, strings.Join(lines, "\n    "))
}

func (a *app) printMetrics(ms []submit.Metric) {
	fmt.Fprintln(a.stderr, "metrics:")
	a.printMetricsTo(a.stderr, ms)
}

func (a *app) printMetricsTo(w io.Writer, ms []submit.Metric) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, m := range ms {
		var val string
		switch m.Kind {
		case submit.Counter:
			val = fmt.Sprint(m.Counter)
		case submit.Distribution:
			d := m.Distribution
			val = fmt.Sprintf("count=%d sum=%d min=%d max=%d mean=%.2f", d.Count, d.Sum, d.Min, d.Max, d.Mean())
		case submit.Gauge:
			val = fmt.Sprint(m.Gauge.Value)
		case submit.StringSet:
			val = strings.Join(m.StringSet, ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s/%s\t%s\t%s\n", m.Kind, m.Namespace, m.Name, val, m.Transform)
	}
	tw.Flush()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/submit"
)

const runLong = `Build a Beam Go pipeline and run it on the embedded runner (Beam's prism,
inside beamctl), with its workers on this machine.

The pipeline is built as by 'beamctl build'; its launcher is run with the
arguments after -- to construct the pipeline, which is submitted with the
worker for the first --target. A worker for another architecture (for
example linux/arm64 on an amd64 machine) runs under qemu-user, so the
binary you will ship is the one that runs.

Job state changes and messages are printed as they happen, user metrics at
the end. Exit codes: 0 when the job is DONE, 1 when it FAILED, 3 when it
was CANCELLED, 130 when interrupted: Ctrl-C cancels the job and waits for
it to stop; a second Ctrl-C exits at once.`

// cancelWait bounds how long an interrupted run waits for the runner to
// confirm the job's cancellation.
const cancelWait = 30 * time.Second

func newRunCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [PKG] [flags] [-- PIPELINE ARGS...]",
		Short: "Build a pipeline and run it on the embedded runner, with workers on this machine",
		Long:  runLong,
		Example: `  beamctl run ./examples/wordcount -- --input=examples/wordcount/testdata/input.txt --output=/tmp/counts.txt
  beamctl run ./pipeline --target linux/arm64 -- --input=in.txt --output=out.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			pkgArgs, pipelineArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				pkgArgs, pipelineArgs = args[:dash], args[dash:]
			}
			if len(pkgArgs) > 1 {
				return usagef("run takes one package, got %q: put pipeline arguments after --", pkgArgs)
			}
			pkg := "."
			if len(pkgArgs) == 1 {
				pkg = pkgArgs[0]
			}
			if err := a.setup(cmd, pipelineDir(pkg)); err != nil {
				return err
			}
			return a.run(cmd, pkg, pipelineArgs)
		},
	}
	addBuildFlags(cmd.Flags())
	addLaunchFlags(cmd.Flags())
	return cmd
}

func (a *app) run(cmd *cobra.Command, pkg string, pipelineArgs []string) error {
	ctx := cmd.Context()
	o, err := a.buildOptions(ctx, cmd.Flags(), pkg)
	if err != nil {
		return err
	}
	target := o.Targets[0]
	spec, err := a.launchSpec(target)
	if err != nil {
		return err
	}
	// Fail before minutes of building if the worker cannot run here.
	if spec.localWorkers() {
		if _, err := loopback.Emulator(target.OS, target.Arch); err != nil {
			return &usageError{err.Error()}
		}
	}
	m, err := a.runBuild(cmd, o)
	if err != nil {
		return err
	}
	// build resolves a relative --out against the current directory.
	outDir, err := filepath.Abs(o.OutDir)
	if err != nil {
		return err
	}
	launcher, _ := m.Launcher(build.HostPlatform())
	for _, w := range m.Workers() {
		if w.Platform == target {
			spec.worker = filepath.Join(outDir, w.File)
		}
	}
	spec.launcher = filepath.Join(outDir, launcher.File)
	spec.beamVersion = m.BeamVersion
	spec.args = pipelineArgs
	return a.launch(ctx, spec)
}

// jobResult is the last line of `run --output json`.
type jobResult struct {
	JobID    string          `json:"jobId"`
	Name     string          `json:"name"`
	State    string          `json:"state"`
	Error    string          `json:"error,omitempty"`
	Metrics  []submit.Metric `json:"metrics"`
	Duration string          `json:"duration"`
	Seconds  float64         `json:"durationSeconds"`
}

// follow prints the job's progress until it ends, cancelling it when the
// user interrupts or a worker fails, and maps its end to an exit code.
func (a *app) follow(ctx context.Context, conn grpc.ClientConnInterface, job *submit.Job, failures <-chan error, start time.Time) error {
	// The follow outlives an interrupt: after cancelling, the job must be
	// seen to stop.
	followCtx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFollow()
	var workerErr error
	reason := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		select {
		case err := <-failures:
			reason <- err
		case <-ctx.Done():
			reason <- ctx.Err()
		case <-done:
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelWait)
		defer cancel()
		if err := submit.Cancel(cctx, conn, job.ID); err != nil && !errors.Is(err, submit.ErrJobFinished) {
			a.log.Warn("cancelling the job failed", "job", job.ID, "err", err)
		}
		select {
		case <-cctx.Done():
			a.log.Warn("the runner did not confirm the cancellation in time", "job", job.ID)
			stopFollow()
		case <-done:
		}
	}()
	state, err := submit.Follow(followCtx, conn, job.ID, a.printEvent)
	close(done)
	select {
	case r := <-reason:
		if !errors.Is(r, context.Canceled) {
			workerErr = r
		}
	default:
	}

	metrics, merr := submit.Metrics(context.WithoutCancel(ctx), conn, job.ID)
	if merr != nil {
		a.log.Debug("reading metrics failed", "job", job.ID, "err", merr)
	}
	res := jobResult{JobID: job.ID, Name: job.Name, State: state.String(), Metrics: metrics,
		Duration: time.Since(start).Round(time.Millisecond).String(), Seconds: time.Since(start).Seconds()}
	switch {
	case workerErr != nil:
		res.Error = "a worker failed: " + workerErr.Error()
	case err != nil:
		res.Error = err.Error()
	}
	if a.json {
		if err := a.printJSONLine(res); err != nil {
			return err
		}
	} else if len(metrics) > 0 {
		a.printMetrics(metrics)
	}

	switch {
	case ctx.Err() != nil:
		if !a.json {
			fmt.Fprintf(a.stderr, "job %s %s after interrupt\n", job.ID, strings.ToLower(state.String()))
		}
		return ctx.Err()
	case workerErr != nil:
		return &codeError{code: exitFailure, msg: fmt.Sprintf("job %s stopped because a worker failed: %v", job.ID, workerErr)}
	case err != nil:
		return &codeError{code: exitFailure, msg: err.Error()}
	}
	switch state {
	case jobpb.JobState_DONE:
		if !a.json {
			fmt.Fprintf(a.stderr, "job %s done in %s\n", job.ID, res.Duration)
		}
		return nil
	case jobpb.JobState_CANCELLED:
		return &codeError{code: exitCancelled, msg: fmt.Sprintf("job %s was cancelled", job.ID)}
	}
	return &codeError{code: exitFailure, msg: fmt.Sprintf("job %s ended %s", job.ID, state)}
}

func (a *app) printEvent(e submit.Event) {
	if a.json {
		_ = a.printJSONLine(e)
		return
	}
	ts := e.Time.Local().Format("15:04:05")
	switch e.Kind {
	case submit.EventState:
		fmt.Fprintf(a.stderr, "%s  state     %s\n", ts, e.State)
	default:
		if e.Severity == "debug" || e.Severity == "detailed" {
			if !a.v.GetBool("verbose") {
				return
			}
		}
		text := strings.TrimSpace(e.Text)
		// A failure arrives with the whole plan and stack; its first line
		// says what happened, and the final error repeats the rest.
		if first, rest, ok := strings.Cut(text, "\n"); ok && !a.v.GetBool("verbose") {
			text = fmt.Sprintf("%s [%d more lines]", first, strings.Count(rest, "\n")+1)
		}
		fmt.Fprintf(a.stderr, "%s  %-8s  %s\n", ts, strings.ToUpper(e.Severity), text)
	}
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

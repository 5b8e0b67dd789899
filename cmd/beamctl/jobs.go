package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

func newJobsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, inspect, follow and cancel jobs on a Beam job server",
		Long: `List, inspect, follow and cancel jobs on the Beam job server at --endpoint
(or BEAMCTL_ENDPOINT). Tables by default, JSON with --output json.`,
	}
	addDialFlags(cmd.PersistentFlags())

	// each wraps a subcommand's body with configuration and a connection.
	each := func(body func(ctx context.Context, conn grpc.ClientConnInterface, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if err := a.setup(c, ""); err != nil {
				return err
			}
			conn, err := a.dial(c.Context())
			if err != nil {
				return err
			}
			defer conn.Close()
			return jobError(body(c.Context(), conn, args))
		}
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the job server's jobs",
		Args:  cobra.NoArgs,
		RunE: each(func(ctx context.Context, conn grpc.ClientConnInterface, _ []string) error {
			jobs, err := submit.ListJobs(ctx, conn)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(jobsJSON(jobs))
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tNAME")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", j.ID, j.State, j.Name)
			}
			return tw.Flush()
		}),
	}
	status := &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job's state",
		Args:  cobra.ExactArgs(1),
		RunE: each(func(ctx context.Context, conn grpc.ClientConnInterface, args []string) error {
			j, err := submit.JobStatus(ctx, conn, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(jobJSON(j))
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "ID\t%s\nNAME\t%s\nSTATE\t%s\n", j.ID, j.Name, j.State)
			if !j.StateTime.IsZero() {
				fmt.Fprintf(tw, "SINCE\t%s\n", j.StateTime.Local().Format(time.RFC3339))
			}
			return tw.Flush()
		}),
	}
	cancel := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a job and wait until the job server confirms it",
		Args:  cobra.ExactArgs(1),
		RunE: each(func(ctx context.Context, conn grpc.ClientConnInterface, args []string) error {
			res, err := launch.Cancel(ctx, conn, args[0], a.waits(), a.log)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"job_id": args[0], "state": res.State.String()})
			}
			fmt.Fprintf(a.stdout, "job %s %s\n", args[0], res.State)
			return nil
		}),
	}
	var follow bool
	logs := &cobra.Command{
		Use:   "logs JOB",
		Short: "Print a job's messages; --follow keeps printing until it ends",
		Args:  cobra.ExactArgs(1),
		RunE: each(func(ctx context.Context, conn grpc.ClientConnInterface, args []string) error {
			if !follow {
				return submit.Logs(ctx, conn, args[0], false, a.printLogEvent)
			}
			// Followed to its end, the job's end is the exit code, as
			// for run and submit: a CI step can wait on a detached job.
			// The job is not this command's: an interrupt leaves it
			// running.
			return a.outcomeError(launch.Follow(ctx, conn, &submit.Job{ID: args[0]},
				launch.FollowOptions{OnEvent: a.printLogEvent, Watch: true, Logger: a.log}))
		}),
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the job ends, and exit as run does for its end: 0 DONE, 1 FAILED, 3 CANCELLED")
	metrics := &cobra.Command{
		Use:   "metrics JOB",
		Short: "Print a job's user metrics",
		Args:  cobra.ExactArgs(1),
		RunE: each(func(ctx context.Context, conn grpc.ClientConnInterface, args []string) error {
			if _, err := submit.JobStatus(ctx, conn, args[0]); err != nil {
				return err
			}
			ms, err := submit.Metrics(ctx, conn, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ms)
			}
			a.printMetricsTo(a.stdout, ms)
			return nil
		}),
	}
	graphCmd := &cobra.Command{
		Use:   "graph JOB",
		Short: "Show the graph of a job's pipeline, as the job server holds it, as beamctl graph does",
		Long: `Show the graph of the pipeline of a job already submitted, from the Job
API's GetPipeline: the same formats as beamctl graph (--format text, json,
dot, mermaid or svg, --depth, --out), from any portable job server.`,
		Example: `  beamctl jobs graph JOB --endpoint localhost:8099
  beamctl jobs graph JOB --endpoint localhost:8099 --format svg --out job.svg`,
		Args: cobra.ExactArgs(1),
	}
	graphCmd.RunE = each(func(ctx context.Context, conn grpc.ClientConnInterface, args []string) error {
		return a.jobGraph(ctx, graphCmd.Flags(), conn, args[0])
	})
	addGraphFlags(graphCmd.Flags())
	cmd.AddCommand(list, status, cancel, logs, metrics, graphCmd)
	return cmd
}

// jobError turns "not found" into a plain failure with the job server's
// words; the job id and endpoint are already in the message.
func jobError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, submit.ErrJobNotFound) {
		return &codeError{code: exitFailure, msg: problem.FirstLine(err.Error())}
	}
	return err
}

type jobInfoJSON struct {
	ID    string `json:"job_id"`
	Name  string `json:"name"`
	State string `json:"state"`
	Since string `json:"since,omitempty"`
}

func jobJSON(j submit.JobInfo) jobInfoJSON {
	out := jobInfoJSON{ID: j.ID, Name: j.Name, State: j.State.String()}
	if !j.StateTime.IsZero() {
		out.Since = j.StateTime.UTC().Format(time.RFC3339)
	}
	return out
}

func jobsJSON(js []submit.JobInfo) []jobInfoJSON {
	out := make([]jobInfoJSON, 0, len(js))
	for _, j := range js {
		out = append(out, jobJSON(j))
	}
	return out
}

// printLogEvent prints job messages to stdout: they are the command's
// output, not progress.
func (a *app) printLogEvent(e submit.Event) {
	a.writeEvent(a.stdout, e, eventLog)
}

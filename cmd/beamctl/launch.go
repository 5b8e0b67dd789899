package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/submit"
)

// addDialFlags registers how to reach a job server: run, submit and jobs
// share them.
func addDialFlags(f *pflag.FlagSet) {
	f.String("endpoint", "", "Beam job server HOST:PORT")
	f.Duration("connect-timeout", submit.DefaultConnectTimeout, "how long to wait for the job server to answer (0: the default)")
	f.Bool("tls", false, "connect to the job server with TLS")
	f.String("tls-ca", "", "PEM file of certificate authorities to trust for --tls (implies --tls)")
	f.String("tls-server-name", "", "name the job server's certificate must carry (implies --tls)")
	declareSettings(f, fields{"endpoint": {"Endpoint"}, "connect-timeout": {"ConnectTimeout"}, "tls": {"TLS"},
		"tls-ca": {"CAFile"}, "tls-server-name": {"ServerName"}})
}

// addLaunchFlags registers the flags shared by run and submit.
func addLaunchFlags(f *pflag.FlagSet) {
	addDialFlags(f)
	f.Lookup("endpoint").Usage = "Beam job server HOST:PORT (default: the embedded runner)"
	f.String("environment", "", "where workers run: docker, process, external or loopback (default: docker for --endpoint, loopback for the embedded runner)")
	f.String("environment-config", "", "docker: the image; process: the boot command on the job server's machines; external: the worker pool HOST:PORT")
	f.String("loopback-address", "127.0.0.1", "address of this machine's worker pool that the job server can reach, for --environment loopback; beyond loopback only with --expose")
	f.Bool("expose", false, "let --loopback-address be beyond loopback: anyone who can reach it can start workers, that is run programs, as this user")
	f.String("job-name", "", "job name (default: the one the pipeline chooses)")
	f.Duration("capture-timeout", capture.DefaultTimeout, "how long the launcher may take to construct the pipeline (0: the default)")
	f.Bool("detach", false, "print the job id once the job runs, and return (the default for --runner dataflow)")
	addImageFlags(f)
	f.String("runner", "", "dataflow: run the launcher with the Beam Go SDK's Dataflow runner (default: a Job API server, --endpoint, or the embedded runner)")
	f.String("project", "", "Google Cloud project, for --runner dataflow")
	f.String("region", "", "Dataflow region, e.g. us-central1, for --runner dataflow")
	f.String("staging-location", "", "gs://BUCKET/PATH where Dataflow stages the worker, for --runner dataflow")
	f.String("template-location", "", "gs://BUCKET/PATH to write a Dataflow template to instead of starting a job")
	f.String("machine-type", "", "Dataflow worker machine type; Arm ones (t2a-*, c4a-*, n4a-*) need --target linux/arm64")
	f.Bool("dry-run", false, "print the Dataflow job the SDK would submit, and submit nothing")
	f.Bool("wait", false, "follow the Dataflow job to its end, as the SDK does, instead of returning once it is submitted")
	declareSettings(f, fields{"environment": {"Environment"}, "environment-config": {"EnvironmentConfig"},
		"loopback-address": {"LoopbackAddress"}, "expose": {"Expose"}, "job-name": nil, "capture-timeout": {"CaptureTimeout"},
		"detach": {"Detach"}, "runner": {"Runner"}, "project": {"Project"}, "region": {"Region"},
		"staging-location": {"StagingLocation"}, "template-location": {"TemplateLocation"},
		"machine-type": {"MachineType"}, "dry-run": {"DryRun"}, "wait": {"Wait"}})
}

// dataflowFlags are the flags that mean something only for --runner
// dataflow.
var dataflowFlags = []string{"project", "region", "staging-location", "template-location", "machine-type", "dry-run", "wait"}

// dataflowSpec reads the --runner dataflow flags.
func (a *app) dataflowSpec() (*launch.Dataflow, error) {
	switch r := a.v.GetString("runner"); r {
	case "dataflow":
	case "":
		for _, f := range dataflowFlags {
			if a.v.IsSet(f) && a.v.GetString(f) != "" && a.v.GetString(f) != "false" {
				return nil, usagef("--%s is for Dataflow: add --runner dataflow", f)
			}
		}
		return nil, nil
	default:
		return nil, badValue("runner", "--runner %q is not known: give --runner dataflow, or --endpoint HOST:PORT for a Beam job server", r)
	}
	if a.v.GetBool("wait") && a.v.GetBool("detach") {
		return nil, usagef("--wait and --detach both given: choose one of them")
	}
	return &launch.Dataflow{
		Project:          a.v.GetString("project"),
		Region:           a.v.GetString("region"),
		StagingLocation:  a.v.GetString("staging-location"),
		TemplateLocation: a.v.GetString("template-location"),
		MachineType:      a.v.GetString("machine-type"),
		DryRun:           a.v.GetBool("dry-run"),
		Wait:             a.v.GetBool("wait"),
	}, nil
}

// dialOptions are the settings of the dial flags.
func (a *app) dialOptions() (submit.DialOptions, error) {
	o := submit.DialOptions{
		TLS:            a.v.GetBool("tls"),
		CAFile:         a.v.GetString("tls-ca"),
		ServerName:     a.v.GetString("tls-server-name"),
		ConnectTimeout: a.v.GetDuration("connect-timeout"),
		Logger:         a.log,
	}
	return o, o.Validate()
}

// launchSpec reads the launch settings into a spec; what to run is for the
// caller to add.
func (a *app) launchSpec(ctx context.Context) (launch.Spec, error) {
	dial, err := a.dialOptions()
	if err != nil {
		return launch.Spec{}, err
	}
	if a.v.GetString("loopback-address") == "" {
		// An empty host listens on every interface.
		return launch.Spec{}, badValue("loopback-address", "--loopback-address is empty, which is every interface: give the address the job server reaches this machine at, with --expose")
	}
	s := launch.Spec{
		Endpoint:          a.v.GetString("endpoint"),
		Dial:              dial,
		Environment:       launch.Environment(a.v.GetString("environment")),
		EnvironmentConfig: a.v.GetString("environment-config"),
		LoopbackAddress:   a.v.GetString("loopback-address"),
		Expose:            a.v.GetBool("expose"),
		JobName:           a.v.GetString("job-name"),
		CaptureTimeout:    a.v.GetDuration("capture-timeout"),
		Detach:            a.v.GetBool("detach"),
		Waits:             a.waits(),
		WorkerOutput:      a.stderr,
	}
	if a.v.GetBool("verbose") {
		s.LauncherOutput = a.stderr
	}
	if a.v.GetString("image") != "" {
		img, err := a.imageSpec()
		if err != nil {
			return s, err
		}
		if err := a.signing(ctx, &img); err != nil {
			return s, err
		}
		s.Image = &img
	} else if p, err := a.verifyPolicy(); err != nil || p != nil {
		if err != nil {
			return s, err
		}
		return s, usagef("--verify-key checks the worker image a job runs, and this job has none: give --image REPO@sha256:... (or unset --verify-key)")
	} else if a.v.GetString("sign-key") != "" || a.v.GetBool("sign-keyless") {
		return s, usagef("--sign-key signs the worker image a job runs, and this job has none: give --image REPO[:TAG]")
	}
	if s.Dataflow, err = a.dataflowSpec(); err != nil {
		return s, err
	}
	if s.Dataflow != nil && s.Dataflow.Wait {
		// The SDK reports the job's progress in its log.
		s.LauncherOutput = a.stderr
	}
	return s, nil
}

// launch runs the spec and words what happened.
func (a *app) launch(ctx context.Context, s launch.Spec) error {
	defer a.quietPrism()()
	var bp *buildProgress
	if s.Build != nil {
		bp = a.newBuildProgress()
	}
	obs, stopStaging := a.observer(s)
	// Staging ends before the job runs on a job server; the embedded and
	// Dataflow paths stage nothing, and a failed launch may end anywhere.
	defer stopStaging()
	if bp != nil {
		obs.Build = bp.event
	}
	res, err := launch.Run(ctx, s, a.launchDeps(), obs)
	if bp != nil {
		bp.wait()
	}
	if err != nil {
		return launchError(err)
	}
	if res.Dataflow != nil {
		return a.dataflowResult(res)
	}
	return a.result(res, s.Endpoint)
}

func (a *app) launchDeps() launch.Deps { return launch.Deps{Logger: a.log, Digests: a.digests} }

// observer tells the user how a launch of s goes, all but its build; the
// func returned ends the staging progress, and may be called more than
// once.
func (a *app) observer(s launch.Spec) (launch.Observer, func()) {
	staging, stopStaging := a.stagingProgress()
	return launch.Observer{
		Staging:     staging,
		StagingDone: stopStaging,
		Job:         a.printEvent,
		Debugging:   a.printDebugTarget,
		Transforms:  a.printTransforms,
		Submitted: func(sub launch.Submission) {
			a.log.Debug("submitted", "job", sub.Job.ID, "name", sub.Job.Name, "endpoint", sub.Job.Endpoint)
			switch {
			case s.Detach:
			case a.json:
			case sub.Embedded:
				fmt.Fprintf(a.stderr, "job %s (%s) submitted to the embedded runner\n", sub.Job.ID, sub.Job.Name)
			default:
				fmt.Fprintf(a.stderr, "job %s (%s) submitted to %s\n", sub.Job.ID, sub.Job.Name, s.Endpoint)
			}
		},
	}, stopStaging
}

// dataflowResult prints what a Dataflow launch submitted: the job (the
// whole job for a dry run) or the template, and maps how the wait for the
// job ended to the exit code.
func (a *app) dataflowResult(res *launch.Result) error {
	j := res.Dataflow
	if a.json {
		line := struct {
			*launch.DataflowJob
			Error string `json:"error,omitempty"`
		}{DataflowJob: j}
		if res.Outcome == launch.Failed {
			line.Error = res.Err.Error()
		}
		if err := a.printJSONLine(line); err != nil {
			return err
		}
	} else if err := a.printDataflowJob(j); err != nil {
		return err
	}
	switch res.Outcome {
	case launch.Failed:
		return &codeError{code: exitFailure, msg: res.Err.Error()}
	case launch.Cancelled:
		return &codeError{code: exitCancelled, msg: fmt.Sprintf("Dataflow job %s was cancelled", j.ID)}
	case launch.Interrupted:
		if !a.json {
			fmt.Fprintf(a.stderr, "stopped following Dataflow job %s, which runs on %s\n", j.ID, cmp.Or(j.ConsoleURL, "in project "+j.Project))
		}
		return context.Canceled
	}
	return nil
}

func (a *app) printDataflowJob(j *launch.DataflowJob) error {
	switch {
	case j.DryRun:
		var b bytes.Buffer
		if err := json.Indent(&b, j.Spec, "", "  "); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, b.String())
		fmt.Fprintf(a.stderr, "dry run: Dataflow job for project %s in %s, worker %s (%s, sha256 %s), not submitted\n", j.Project, j.Region, j.Worker, j.Platform, j.WorkerSHA256)
	case j.Template != "":
		fmt.Fprintln(a.stdout, j.Template)
		fmt.Fprintf(a.stderr, "Dataflow template written to %s\n", j.Template)
	default:
		fmt.Fprintln(a.stdout, j.ID)
		if j.ConsoleURL != "" {
			fmt.Fprintf(a.stderr, "Dataflow job %s: %s\n", j.ID, j.ConsoleURL)
		}
	}
	return nil
}

// launchError gives connection problems the user must fix in the command
// line the usage exit code; an unreachable server may be a passing fault,
// so it stays a failure.
func launchError(err error) error {
	switch {
	case errors.Is(err, submit.ErrInvalidEndpoint), errors.Is(err, submit.ErrNotJobServer),
		errors.Is(err, submit.ErrTLSMismatch), errors.Is(err, submit.ErrTLSConfig):
		return &usageError{err: err}
	}
	return err
}

// jobResult is the last line of `run --output json`.
type jobResult struct {
	JobID string `json:"job_id"`
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Cause is a failed job's error in a few words, with the fix.
	Cause    *submit.Cause   `json:"cause,omitempty"`
	Metrics  []submit.Metric `json:"metrics"`
	Duration string          `json:"duration"`
	Seconds  float64         `json:"duration_seconds"`
	// StagedBytes is what was staged to the job server: 0 when the worker
	// comes in an image.
	StagedBytes int64  `json:"staged_bytes"`
	Image       string `json:"image,omitempty"`
	// Run counts the runs of run --watch, from 1; Changed are the files
	// whose change started it, and Superseded says the next run cancelled
	// it.
	Run        int      `json:"run,omitempty"`
	Changed    []string `json:"changed,omitempty"`
	Superseded string   `json:"superseded,omitempty"`
}

// resultLine is the JSON line of how a followed job ended.
func resultLine(res *launch.Result) jobResult {
	job := res.Job
	out := jobResult{JobID: job.ID, Name: job.Name, State: res.State.String(), Metrics: res.Metrics,
		Duration: res.Duration.Round(time.Millisecond).String(), Seconds: res.Duration.Seconds(),
		StagedBytes: res.StagedBytes, Image: res.Image}
	var failed *submit.JobFailedError
	switch {
	case res.WorkerFailed:
		out.Error = "a worker failed: " + res.Err.Error()
	case errors.As(res.Err, &failed) && failed.Cause != nil:
		// A program reading the line gets the runner's whole account.
		out.Error = fmt.Sprintf("job %s failed: %s", failed.JobID, strings.TrimSpace(failed.Message))
		out.Cause = failed.Cause
	case res.Err != nil:
		out.Error = res.Err.Error()
	}
	return out
}

// result prints how the job ended and maps it to the exit code.
func (a *app) result(res *launch.Result, endpoint string) error {
	job := res.Job
	if res.Outcome == launch.Detached {
		if a.json {
			return a.printJSONLine(map[string]any{"job_id": job.ID, "name": job.Name, "endpoint": endpoint, "state": "RUNNING", "staged_bytes": res.StagedBytes, "image": res.Image})
		}
		fmt.Fprintln(a.stdout, job.ID)
		return nil
	}
	out := resultLine(res)
	if a.json {
		if err := a.printJSONLine(out); err != nil {
			return err
		}
	} else if len(res.Metrics) > 0 {
		a.printMetrics(res.Metrics)
	}
	if res.Outcome == launch.Done && !a.json {
		fmt.Fprintf(a.stderr, "job %s done in %s\n", job.ID, out.Duration)
	}
	if res.Outcome == launch.Interrupted && !a.json {
		fmt.Fprintf(a.stderr, "job %s %s after interrupt\n", job.ID, strings.ToLower(res.State.String()))
	}
	return a.outcomeError(res)
}

// outcomeError maps how a followed job ended to the exit code, with the
// final line that says why it is not 0: for run, submit and jobs logs
// --follow alike.
func (a *app) outcomeError(res *launch.Result) error {
	id := res.Job.ID
	switch res.Outcome {
	case launch.Done:
		return nil
	case launch.Interrupted:
		return context.Canceled
	case launch.Cancelled:
		return &codeError{code: exitCancelled, msg: fmt.Sprintf("job %s was cancelled", id)}
	}
	var failed *submit.JobFailedError
	var lost *submit.LostJobError
	switch {
	case errors.As(res.Err, &lost):
		return &codeError{code: exitFailure, msg: fmt.Sprintf("%v; follow it again with: beamctl jobs logs --follow %s --endpoint %s",
			res.Err, lost.JobID, a.v.GetString("endpoint"))}
	case res.WorkerFailed:
		return &codeError{code: exitFailure, msg: fmt.Sprintf("job %s stopped because a worker failed: %v", id, res.Err)}
	case errors.As(res.Err, &failed):
		return &codeError{code: exitFailure, msg: a.jobFailure(failed)}
	case res.Err != nil:
		return res.Err
	}
	return &codeError{code: exitFailure, msg: fmt.Sprintf("job %s ended %s", id, res.State)}
}

// waits are the bounds of the waits once a job is to stop: a second
// interrupt ends them at once.
func (a *app) waits() launch.Waits { return launch.Waits{Abort: a.abort} }

// dial connects to the job server of the dial flags.
func (a *app) dial(ctx context.Context) (*grpc.ClientConn, error) {
	endpoint := a.v.GetString("endpoint")
	if endpoint == "" {
		return nil, usagef("no job server: give --endpoint HOST:PORT (or BEAMCTL_ENDPOINT)")
	}
	o, err := a.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := submit.Dial(ctx, endpoint, o)
	if err != nil {
		return nil, launchError(err)
	}
	return conn, nil
}

// stagingProgress shows a progress bar per staged file on a terminal; its
// stop, which may be called more than once, waits for the bars to end.
func (a *app) stagingProgress() (func(stage.Progress), func()) {
	if !a.stderrIsTerminal() || a.json {
		return func(p stage.Progress) {
			if p.Sent == p.Size {
				a.log.Info("staged", "file", p.Path, "bytes", p.Size)
			}
		}, func() {}
	}
	// The container starts with the first chunk: most launches stage
	// nothing, and a container once started must be waited for.
	var (
		mu   sync.Mutex
		pr   *mpb.Progress
		bars = map[string]*mpb.Bar{}
	)
	return func(p stage.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if pr == nil {
				pr = mpb.New(mpb.WithOutput(a.stderr), mpb.WithRefreshRate(150*time.Millisecond))
			}
			b := bars[p.Path]
			if b == nil {
				b = pr.AddBar(p.Size,
					mpb.PrependDecorators(decor.Name("staging "+shortPath(p.Path)+" ")),
					mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name("  "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
				bars[p.Path] = b
			}
			b.SetCurrent(p.Sent)
		}, func() {
			mu.Lock()
			defer mu.Unlock()
			if pr == nil {
				return
			}
			for _, b := range bars {
				if !b.Completed() {
					b.Abort(false)
				}
			}
			pr.Wait()
			pr, bars = nil, map[string]*mpb.Bar{}
		}
}

func shortPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Package dataflow runs a pipeline's launcher with the Beam Go SDK's own
// Dataflow runner, handing it the worker beamctl built (and the worker
// image by digest), so that the SDK neither compiles a worker of its own
// nor guesses the workers' architecture. Authentication is the SDK's
// (Application Default Credentials): nothing secret passes through here.
package dataflow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beamctl/beamctl/internal/lines"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/internal/proc"
)

// Options are one submission to Dataflow. Errors name them as {Field}.
type Options struct {
	// Launcher is the pipeline built for this machine; Worker the absolute
	// path of its worker for the job's machines.
	Launcher, Worker string
	// Image is the worker image by digest; empty leaves the SDK's default.
	Image string
	// Project, Region and StagingLocation (gs://...) are required.
	Project, Region, StagingLocation string
	// TemplateLocation (gs://...), if set, writes a template there instead
	// of starting a job.
	TemplateLocation string
	// MachineType is the workers' machine type; empty leaves it to the
	// pipeline's arguments or Dataflow's default.
	MachineType string
	// JobName overrides the name the pipeline chooses.
	JobName string
	// DryRun prints the job the SDK would submit, and submits nothing.
	DryRun bool
	// Wait follows the job to its end, as the SDK does; otherwise the
	// launcher returns once the job is submitted.
	Wait bool
	// Args are the pipeline's own arguments.
	Args []string
	// Dir is where the launcher runs.
	Dir string
	// Output receives the launcher's output; nil discards it (the end of it
	// is still quoted in errors).
	Output io.Writer
	// Stop bounds how long the launcher may take to exit once ctx ends.
	Stop   time.Duration
	Logger *slog.Logger
}

// Job is what the SDK submitted, or with DryRun would have.
type Job struct {
	// ID and ConsoleURL are Dataflow's; empty for a dry run or a template.
	ID         string `json:"job_id,omitempty"`
	ConsoleURL string `json:"console_url,omitempty"`
	Project    string `json:"project"`
	Region     string `json:"region"`
	// Template is where the template was written.
	Template string `json:"template_location,omitempty"`
	// Spec is the Dataflow job (v1b3 Job JSON) the SDK printed for a dry
	// run or a template.
	Spec json.RawMessage `json:"job,omitempty"`
	// End is how the job ended, with Wait, as the SDK reported it: DONE,
	// CANCELLED, DRAINED, UPDATED or FAILED; empty when it reported none.
	End string `json:"-"`
}

// sdkSet are the SDK's arguments that these Options set; a pipeline
// argument that sets one too would be ambiguous.
var sdkSet = []string{"runner", "project", "region", "staging_location", "worker_binary",
	"sdk_container_image", "worker_harness_container_image", "dry_run", "template_location", "async", "execute_async", "job_name"}

// Validate checks the options without running anything.
func (o *Options) Validate() error {
	switch {
	case o.Project == "":
		return problem.Usagef("give the Google Cloud project", "Dataflow needs {Project}")
	case o.Region == "":
		return problem.Usagef("give a Dataflow region, e.g. us-central1", "Dataflow needs {Region}")
	case o.StagingLocation == "":
		return problem.Usagef("give a Cloud Storage path gs://BUCKET/PATH", "Dataflow needs {StagingLocation}")
	case !strings.HasPrefix(o.StagingLocation, "gs://"):
		return problem.Usagef("give a Cloud Storage path gs://BUCKET/PATH", "{StagingLocation} %q is not a gs:// path", o.StagingLocation).About("StagingLocation")
	case o.TemplateLocation != "" && !strings.HasPrefix(o.TemplateLocation, "gs://"):
		return problem.Usagef("give a Cloud Storage path gs://BUCKET/PATH", "{TemplateLocation} %q is not a gs:// path", o.TemplateLocation).About("TemplateLocation")
	case o.Wait && (o.DryRun || o.TemplateLocation != ""):
		return problem.Usagef("drop {Wait}", "{Wait} has nothing to wait for: a dry run or a template starts no job").About("Wait")
	case o.Image != "" && !strings.Contains(o.Image, "@sha256:"):
		return fmt.Errorf("the worker image %q is not given by digest", o.Image)
	}
	for _, name := range sdkSet {
		if _, ok := ArgValue(o.Args, name); ok {
			return problem.Usagef("drop it from the pipeline's arguments: beamctl sets it from its own settings",
				"the pipeline argument %s is beamctl's to set for Dataflow", name)
		}
	}
	if _, err := o.machineType(); err != nil {
		return err
	}
	return nil
}

// machineType is the workers' machine type, from the options or the
// pipeline's own arguments (the SDK's worker_machine_type, or its alias
// machine_type); empty when neither sets one.
func (o *Options) machineType() (string, error) {
	var from []string
	got := map[string]bool{}
	for _, name := range []string{"worker_machine_type", "machine_type"} {
		if v, ok := ArgValue(o.Args, name); ok && v != "" {
			from = append(from, v)
			got[v] = true
		}
	}
	if o.MachineType != "" {
		got[o.MachineType] = true
	}
	if len(got) > 1 {
		return "", problem.Usagef("give the machine type once",
			"{MachineType} %q and the pipeline arguments worker_machine_type/machine_type (%s) disagree", o.MachineType, strings.Join(from, ", ")).About("MachineType")
	}
	for m := range got {
		return m, nil
	}
	return "", nil
}

// WorkerMachineType is the workers' machine type the options and the
// pipeline's arguments give; empty for Dataflow's default.
func (o *Options) WorkerMachineType() string {
	m, _ := o.machineType()
	return m
}

// armFamilies are Dataflow's Arm (Ampere Altra, Google Axion) machine
// families: their workers run linux/arm64.
var armFamilies = []string{"t2a", "c4a", "n4a"}

// MachineArch is the GOARCH of workers on machine type m ("" for Dataflow's
// default, an x86 machine).
func MachineArch(m string) string {
	family, _, _ := strings.Cut(strings.ToLower(m), "-")
	for _, f := range armFamilies {
		if family == f {
			return "arm64"
		}
	}
	return "amd64"
}

// ArgValue finds the flag name among Go flag-style args (-name, --name,
// with =value or as the next argument), the last one winning as with the
// flag package; a boolean given alone reads as "true".
func ArgValue(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		k, v, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if k != name {
			continue
		}
		found = true
		switch {
		case hasValue:
			val = v
		case i+1 < len(args) && !strings.HasPrefix(args[i+1], "-"):
			val = args[i+1]
			i++
		default:
			val = "true"
		}
	}
	return val, found
}

// argv is the launcher's command line.
func (o *Options) argv() []string {
	argv := []string{o.Launcher,
		"--runner=dataflow",
		"--project=" + o.Project,
		"--region=" + o.Region,
		"--staging_location=" + o.StagingLocation,
		"--worker_binary=" + o.Worker,
	}
	if o.Image != "" {
		argv = append(argv, "--sdk_container_image="+o.Image)
	}
	if o.MachineType != "" {
		argv = append(argv, "--worker_machine_type="+o.MachineType)
	}
	if o.TemplateLocation != "" {
		argv = append(argv, "--template_location="+o.TemplateLocation)
	}
	if o.JobName != "" {
		argv = append(argv, "--job_name="+o.JobName)
	}
	if o.DryRun {
		argv = append(argv, "--dry_run")
	}
	if !o.Wait {
		argv = append(argv, "--async")
	}
	return append(argv, o.Args...)
}

// Submit runs the launcher with the SDK's Dataflow runner and reads what it
// submitted from its log.
func Submit(ctx context.Context, o Options) (*Job, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(o.Worker); err != nil {
		return nil, fmt.Errorf("the worker for Dataflow: %w", err)
	}
	r := newLogReader()
	var out io.Writer = r
	if o.Output != nil {
		out = io.MultiWriter(r, o.Output)
	}
	argv := o.argv()
	env := os.Environ()
	if o.DryRun {
		// The SDK's dry run still asks Cloud Storage about the staging
		// bucket (a warning about its soft-delete policy) with whatever
		// credentials it finds, and retries for minutes where Google is
		// unreachable. Credentials that cannot exist keep it offline; it
		// needs none to print the job.
		env = append(env, "GOOGLE_APPLICATION_CREDENTIALS="+filepath.Join(os.DevNull, "no-credentials-for-a-dry-run"))
	}
	o.Logger.Debug("running the launcher with the Dataflow runner", "argv", argv)
	res, err := proc.Run(ctx, proc.Cmd{Argv: argv, Dir: o.Dir, Env: env, Stdout: out, Stderr: out},
		proc.Options{Grace: o.Stop, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("starting the launcher: %w", err)
	}
	r.flush()
	job := r.job()
	job.Project, job.Region, job.Template = o.Project, o.Region, o.TemplateLocation
	switch {
	case res.Stopped:
		if job.ID != "" {
			// The job runs on: callers report it with the interruption.
			return job, fmt.Errorf("stopped while following Dataflow job %s, which runs on (%s): %w", job.ID, job.ConsoleURL, ctx.Err())
		}
		return nil, ctx.Err()
	case res.Err != nil:
		return job, &LauncherError{Err: res.Err, Output: r.tail(), JobID: job.ID, JobFailed: job.End == "FAILED"}
	case o.DryRun && job.Spec == nil:
		return nil, &LauncherError{Err: fmt.Errorf("it printed no job for the dry run"), Output: r.tail()}
	case !o.DryRun && o.TemplateLocation == "" && job.ID == "":
		return nil, &LauncherError{Err: fmt.Errorf("it named no Dataflow job: does it run the pipeline with beamx.Run?"), Output: r.tail()}
	}
	if !o.DryRun && o.TemplateLocation != "" {
		// The SDK prints the job it writes as the template.
		job.Spec = nil
	}
	return job, nil
}

// LauncherError is a launcher that failed under the Dataflow runner: the
// SDK's own complaint (no credentials, a bucket it cannot write, the job
// refused, or with Wait the job failed) ends its output.
type LauncherError struct {
	Err    error
	Output string
	// JobID is the job it submitted before failing, if any; JobFailed
	// says whether the SDK saw that job fail, or failed itself while the
	// job may run on.
	JobID     string
	JobFailed bool
}

func (e *LauncherError) Error() string {
	msg := "the launcher under the Dataflow runner failed (" + e.Err.Error() + ")"
	switch {
	case e.JobFailed:
		msg = "Dataflow job " + e.JobID + " failed (" + e.Err.Error() + ")"
	case e.JobID != "":
		msg = "the launcher failed after submitting Dataflow job " + e.JobID + ", which may run on (" + e.Err.Error() + ")"
	}
	last := lastLine(e.Output)
	if last != "" {
		msg += ": " + last
	}
	switch {
	case e.JobID != "":
	case strings.Contains(last, "bucket doesn't exist"):
		// The SDK means to create a missing staging bucket, but takes the
		// storage client's answer for a failure.
		msg += "; create the staging location's bucket first (gcloud storage buckets create gs://BUCKET --location REGION)"
	case googleAccess.MatchString(last):
		msg += "; check the Application Default Credentials (gcloud auth application-default login), that the project exists and that they may write to the staging location"
	}
	return msg
}

// googleAccess matches the SDK's complaints about reaching or being let
// into Google Cloud, as opposed to the pipeline's own failures.
var googleAccess = regexp.MustCompile(`googleapis\.com|credentials|oauth2|dialing: |PermissionDenied|403|401`)

func (e *LauncherError) Unwrap() error { return e.Err }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if m, _, ok := recordStart(l); ok {
				return m
			}
			return l
		}
	}
	return ""
}

// logReader reads the SDK's log as it is written, for the records whose
// message carries the job, the console link and the job id. The SDK logs
// through slog since v2.6x, as text (its default) or JSON (--log_kind),
// and through the standard library's log before, where a message of
// several lines (the job's JSON) continues on lines of its own.
type logReader struct {
	mu    sync.Mutex
	lines lines.Splitter
	// open is a standard-log record that later lines may continue.
	open    *strings.Builder
	spec    json.RawMessage
	console string
	id      string
	// end is the job's end as the SDK reported it while waiting.
	end  string
	last lines.Tail
}

// sdkEnds are the SDK's words for how a job it waited for ended
// (dataflowlib's currentStateMessage), as Job.End states them. All but a
// failure make the launcher succeed.
var sdkEnds = map[string]string{"succeeded!": "DONE", "cancelled": "CANCELLED", "drained": "DRAINED", "updated": "UPDATED", "failed": "FAILED"}

// jobEnd finds the SDK's report of a job's end: "Job ID succeeded!" and
// the like, logged, or "Job ID failed", the error the pipeline exits with
// (often behind the program's name).
var jobEnd = regexp.MustCompile(`(?:^|: )Job (\S+) (succeeded!|cancelled|drained|updated|failed)$`)

const keepLines = 20

func newLogReader() *logReader {
	r := &logReader{last: lines.Tail{Keep: keepLines}}
	r.lines.Line = func(l []byte) { r.line(string(l)) }
	return r
}

func (r *logReader) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines.Write(p)
}

func (r *logReader) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines.Flush()
	r.close()
}

func (r *logReader) line(l string) {
	r.last.Add(l)
	m, multiline, ok := recordStart(l)
	switch {
	case ok:
		r.close()
		if multiline {
			r.open = &strings.Builder{}
			r.open.WriteString(m)
			// The id and link are known from the first line on; the
			// record may go on until the next one starts.
			r.firstLine(m)
			return
		}
		r.record(m)
	case r.open != nil:
		r.open.WriteString("\n" + l)
	}
}

// close ends the open standard-log record.
func (r *logReader) close() {
	if r.open != nil {
		r.record(r.open.String())
		r.open = nil
	}
}

func (r *logReader) record(m string) {
	if strings.HasPrefix(m, "{") && json.Valid([]byte(m)) {
		var j struct {
			Type string `json:"type"`
		}
		// The job, not the other JSON the SDK may log.
		if json.Unmarshal([]byte(m), &j) == nil && strings.HasPrefix(j.Type, "JOB_TYPE_") {
			r.spec = json.RawMessage(m)
		}
		return
	}
	r.firstLine(m)
}

func (r *logReader) firstLine(m string) {
	m, _, _ = strings.Cut(m, "\n")
	switch {
	case strings.HasPrefix(m, "Console: "):
		r.console = strings.TrimSpace(strings.TrimPrefix(m, "Console: "))
		if u, err := url.Parse(r.console); err == nil {
			parts := strings.Split(strings.Trim(u.Path, "/"), "/")
			r.id = parts[len(parts)-1]
		}
	case strings.HasPrefix(m, "Submitted job: "):
		r.id = strings.TrimSpace(strings.TrimPrefix(m, "Submitted job: "))
	}
	if e := jobEnd.FindStringSubmatch(strings.TrimSpace(m)); e != nil && e[1] == r.id {
		r.end = sdkEnds[e[2]]
	}
}

func (r *logReader) job() *Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &Job{ID: r.id, ConsoleURL: r.console, Spec: r.spec, End: r.end}
}

func (r *logReader) tail() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.last.Lines(), "\n")
}

// message is the msg of an slog text record (the SDK's log format).
// stdLogPrefix is the standard library logger's default prefix.
var stdLogPrefix = regexp.MustCompile(`^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? `)

// recordStart returns the message of a line that begins a log record, and
// whether later lines may continue it (the standard library's log).
func recordStart(l string) (msg string, multiline, ok bool) {
	switch {
	case strings.HasPrefix(l, "time="):
		m, ok := textMessage(l)
		return m, false, ok
	case strings.HasPrefix(l, "{"):
		var j struct {
			Time string  `json:"time"`
			Msg  *string `json:"msg"`
		}
		if json.Unmarshal([]byte(l), &j) == nil && j.Time != "" && j.Msg != nil {
			return *j.Msg, false, true
		}
	}
	if loc := stdLogPrefix.FindStringIndex(l); loc != nil {
		return l[loc[1]:], true, true
	}
	return "", false, false
}

// textMessage is the msg of a slog text record.
func textMessage(l string) (string, bool) {
	i := strings.Index(l, " msg=")
	if i < 0 {
		return "", false
	}
	rest := l[i+len(" msg="):]
	if strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", false
		}
		m, err := strconv.Unquote(q)
		return m, err == nil
	}
	m, _, _ := strings.Cut(rest, " ")
	return m, true
}

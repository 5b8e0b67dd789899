// Package capture obtains the pipeline a Beam Go launcher constructs,
// without running it anywhere: the launcher is run against a short-lived Job
// API on 127.0.0.1 that keeps what it submits and asks for no artifact bytes.
// The pipeline's Go environments then declare the worker binary as a file
// artifact with its sha256, ready for any job server.
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
)

// DefaultTimeout bounds a launcher run: constructing a graph takes
// seconds, so a launcher still running after this is stuck.
const DefaultTimeout = 2 * time.Minute

// Options configure Capture.
type Options struct {
	// Launcher is the path of the host launcher binary.
	Launcher string
	// WorkerPath is the worker binary the pipeline will declare, with its
	// sha256 (from Digests). It is never read or copied during capture.
	WorkerPath string
	// Args are the user's pipeline arguments.
	Args []string
	// JobName overrides the job name the launcher chooses.
	JobName string
	// Timeout bounds the launcher run; 0 means DefaultTimeout. A
	// launcher still running then is killed with its children.
	Timeout time.Duration
	// Env holds extra KEY=VALUE environment entries for the launcher.
	Env []string
	// Debugger, if set, runs the launcher under a debugger: it turns the
	// launcher's command line into the debugger's. A debugged launcher may
	// stay stopped for as long as someone debugs it, so Timeout does not
	// apply; capture ends once the launcher has submitted its pipeline,
	// stopping the debugger and, with it, the launcher.
	Debugger func(argv []string) []string
	// Stdout and Stderr receive the launcher's output as it is written; nil
	// discards it. Its beginning and end are kept either way for error
	// messages.
	Stdout, Stderr io.Writer
	// Logger receives progress records; nil discards them.
	Logger *slog.Logger
	// Digests knows the digests of files this run has hashed or built: a
	// worker it knows in its current state is not hashed again. Default: a
	// new cache.
	Digests *digest.Cache
}

// Captured is what a launcher submitted.
type Captured struct {
	Pipeline *pipepb.Pipeline
	Options  *structpb.Struct
	JobName  string
	// Worker is the Go worker binary artifact of the pipeline's Go
	// environment(s).
	Worker beam.File
}

// reservedFlags are set by Capture; a user value would take the launcher
// somewhere other than the capture service.
var reservedFlags = []string{"runner", "endpoint", "async", "worker_binary"}

// Capture runs the launcher against a short-lived Job API on 127.0.0.1 that
// keeps what the launcher submits and stages nothing, and returns it. The
// pipeline's Go environment then declares the worker as a file artifact with
// its sha256.
func Capture(ctx context.Context, o Options) (*Captured, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	worker, err := filepath.Abs(o.WorkerPath)
	if err != nil {
		return nil, fmt.Errorf("worker binary: %w", err)
	}
	if st, err := os.Stat(worker); err != nil {
		return nil, fmt.Errorf("worker binary: %w", err)
	} else if st.IsDir() {
		return nil, fmt.Errorf("worker binary %s is a directory; pass the built binary", worker)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the capture service: %w", err)
	}
	cs := newCaptureServer(lis.Addr().String(), o.Logger)
	// Pipelines with large embedded payloads exceed gRPC's 4 MiB default.
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(math.MaxInt32))
	jobpb.RegisterJobServiceServer(srv, cs)
	jobpb.RegisterArtifactStagingServiceServer(srv, cs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	defer func() {
		srv.Stop()
		<-served
	}()

	args := []string{
		"--runner=universal",
		"--endpoint=" + cs.addr,
		"--async",
		// The SDK hashes the binary it is given, all of it, in the
		// launcher; the worker artifact is pinned afterwards with the digest
		// this run knows already, so the launcher gets an empty file.
		"--worker_binary=" + os.DevNull,
	}
	if o.JobName != "" {
		args = append(args, "--job_name="+o.JobName)
	}
	args = append(args, o.Args...)
	o.Logger.Debug("capturing pipeline", "launcher", o.Launcher, "args", args)

	out := newExcerpt(outputHeadBytes, outputTailBytes)
	run := launcherRun{
		argv:    append([]string{o.Launcher}, args...),
		env:     o.Env,
		stdout:  teeTo(o.Stdout, out),
		stderr:  teeTo(o.Stderr, out),
		timeout: o.Timeout,
	}
	if o.Debugger != nil {
		run.argv = o.Debugger(run.argv)
		run.timeout = 0
		run.until = cs.ranOnce
	}
	res := runLauncher(ctx, run)
	subs := cs.submissions()
	output := out.String()
	switch {
	case res.timedOut:
		return nil, &LauncherError{Launcher: o.Launcher, Problem: fmt.Sprintf("submitted no pipeline within %v and was killed: is it blocked before calling beamx.Run? (if it needs longer, raise {CaptureTimeout})", o.Timeout), Output: output}
	case ctx.Err() != nil:
		return nil, fmt.Errorf("capturing the pipeline of %s: %w", o.Launcher, ctx.Err())
	case res.err != nil && res.startErr:
		return nil, fmt.Errorf("starting launcher: %w", res.err)
	case len(subs) == 0 && res.err != nil && rejectedFlag(output) != "":
		// The usage text that follows lists every Beam flag; it is noise here.
		complaint, _, _ := strings.Cut(output, "\nUsage of ")
		return nil, &LauncherError{Launcher: o.Launcher, Problem: fmt.Sprintf("submitted no pipeline: it rejected the argument %s (%v)", rejectedFlag(output), res.err), Output: complaint}
	case len(subs) == 0 && res.err != nil:
		return nil, &LauncherError{Launcher: o.Launcher, Problem: fmt.Sprintf("submitted no pipeline (%v)", res.err), Output: output}
	case len(subs) == 0:
		return nil, &LauncherError{Launcher: o.Launcher, Problem: "submitted no pipeline to beamctl: it must call flag.Parse() (or beam.Init after it) and beamx.Run, so that the runner beamctl passes takes effect", Output: output}
	case res.err != nil && !res.stopped:
		return nil, &LauncherError{Launcher: o.Launcher, Problem: fmt.Sprintf("failed after submitting its pipeline (%v)", res.err), Output: output}
	case len(subs) > 1:
		return nil, &LauncherError{Launcher: o.Launcher, Problem: fmt.Sprintf("submitted %d pipelines; beamctl runs one pipeline per launcher", len(subs)), Output: output}
	}

	c := subs[0]
	if o.JobName != "" {
		c.JobName = o.JobName
	}
	if c.Worker, err = pinWorker(ctx, c.Pipeline, worker, o.Digests, o.Logger); err != nil {
		return nil, err
	}
	o.Logger.Debug("captured pipeline", "job", c.JobName, "transforms", len(c.Pipeline.GetComponents().GetTransforms()), "worker", c.Worker.Path, "sha256", c.Worker.SHA256)
	return c, nil
}

func (o *Options) validate() error {
	if o.Launcher == "" {
		return errors.New("no launcher binary given")
	}
	if o.WorkerPath == "" {
		return errors.New("no worker binary given")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return fmt.Errorf("capture timeout %v is negative", o.Timeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Digests == nil {
		o.Digests = digest.NewCache()
	}
	return CheckArgs(o.Args)
}

// reservedFix says why each reserved flag is not the user's to give.
var reservedFix = map[string]string{
	"runner":        "remove it: beamctl runs the job on the embedded runner, at {Endpoint} or with {Runner}",
	"endpoint":      "remove it: beamctl runs the job on the embedded runner, at {Endpoint} or with {Runner}",
	"async":         "remove it: beamctl submits the job and follows it, or returns once it runs with {Detach}",
	"worker_binary": "remove it: beamctl gives the launcher the worker it built for {Target}",
}

// CheckArgs refuses pipeline arguments that set what Capture sets, so that
// a launch can refuse them before it builds anything.
func CheckArgs(args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		// Not stopping at the first non-flag: it may be the value of a
		// preceding "-flag value" pair.
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(reservedFlags, name) {
			return problem.Usagef(reservedFix[name], "the pipeline argument %s is beamctl's to set", a)
		}
	}
	return nil
}

// LauncherError reports a launcher that did not hand over exactly one
// pipeline, with the beginning and end of what it printed.
type LauncherError struct {
	Launcher string
	Problem  string
	Output   string
}

func (e *LauncherError) Error() string { return e.Render(func(s string) string { return s }) }

// Render words the error with the caller's names for settings.
func (e *LauncherError) Render(name func(string) string) string {
	msg := fmt.Sprintf("launcher %s %s", filepath.Base(e.Launcher), problem.Sub(e.Problem, name))
	out := strings.TrimRight(e.Output, "\n")
	if out == "" {
		return msg + " (it printed nothing)"
	}
	return msg + "; its output:\n" + indent(out, "    ")
}

// rejectedFlag finds the argument a Go flag parse refused.
func rejectedFlag(output string) string {
	const marker = "flag provided but not defined: "
	_, rest, ok := strings.Cut(output, marker)
	if !ok {
		return ""
	}
	flag, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(flag)
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// pinWorker makes every Go environment declare worker as its worker binary
// artifact, with the file's sha256, and returns that artifact.
func pinWorker(ctx context.Context, p *pipepb.Pipeline, worker string, digests *digest.Cache, logger *slog.Logger) (beam.File, error) {
	envs, err := beam.GoEnvironments(p)
	if err != nil {
		return beam.File{}, err
	}
	want := beam.File{Path: worker}
	for _, id := range envs {
		for _, dep := range p.GetComponents().GetEnvironments()[id].GetDependencies() {
			if dep.GetRoleUrn() != beam.GoWorkerRoleURN || dep.GetTypeUrn() != beam.FileArtifactURN {
				continue
			}
			got, err := beam.FilePayload(dep)
			if err != nil {
				return beam.File{}, fmt.Errorf("environment %q: %w", id, err)
			}
			if got.Path == worker && got.SHA256 != "" {
				want.SHA256 = got.SHA256
			}
		}
	}
	if want.SHA256 == "" {
		sum, err := digests.Sum(ctx, worker)
		if err != nil {
			return beam.File{}, fmt.Errorf("worker binary: %w", err)
		}
		want.SHA256 = sum.SHA256
	}
	for _, id := range envs {
		env := p.GetComponents().GetEnvironments()[id]
		pinned := false
		for i, dep := range env.GetDependencies() {
			if dep.GetRoleUrn() != beam.GoWorkerRoleURN {
				continue
			}
			if got, _ := beam.FilePayload(dep); dep.GetTypeUrn() != beam.FileArtifactURN || got != want {
				logger.Debug("pinning worker artifact", "environment", id, "declared_type", dep.GetTypeUrn(), "declared", got, "pinned", want)
			}
			env.Dependencies[i] = beam.FileArtifact(want, beam.GoWorkerRoleURN)
			pinned = true
		}
		if !pinned {
			env.Dependencies = append(env.Dependencies, beam.FileArtifact(want, beam.GoWorkerRoleURN))
		}
	}
	return want, nil
}

// captureServer is the Job API the launcher submits to during capture. It
// accepts every pipeline and never asks for artifact bytes.
type captureServer struct {
	jobpb.UnimplementedJobServiceServer
	jobpb.UnimplementedArtifactStagingServiceServer

	addr   string
	logger *slog.Logger

	mu       sync.Mutex
	prepared map[string]*Captured
	ran      []*Captured
	// ranOnce is closed when the first pipeline is run.
	ranOnce chan struct{}
}

func newCaptureServer(addr string, logger *slog.Logger) *captureServer {
	return &captureServer{addr: addr, logger: logger, prepared: map[string]*Captured{}, ranOnce: make(chan struct{})}
}

func (s *captureServer) submissions() []*Captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Captured(nil), s.ran...)
}

func (s *captureServer) Prepare(_ context.Context, req *jobpb.PrepareJobRequest) (*jobpb.PrepareJobResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("capture-%d", len(s.prepared)+1)
	s.prepared[id] = &Captured{Pipeline: req.GetPipeline(), Options: req.GetPipelineOptions(), JobName: req.GetJobName()}
	return &jobpb.PrepareJobResponse{
		PreparationId:           id,
		StagingSessionToken:     id,
		ArtifactStagingEndpoint: &pipepb.ApiServiceDescriptor{Url: s.addr},
	}, nil
}

// ReverseArtifactRetrievalService lets the launcher resolve its artifacts and
// then ends the session: the worker is a local file already, so no bytes are
// requested.
func (s *captureServer) ReverseArtifactRetrievalService(stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	c, ok := s.prepared[first.GetStagingToken()]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("unknown staging token %q", first.GetStagingToken())
	}
	var deps []*pipepb.ArtifactInformation
	for _, env := range c.Pipeline.GetComponents().GetEnvironments() {
		deps = append(deps, env.GetDependencies()...)
	}
	if len(deps) == 0 {
		return nil
	}
	err = stream.Send(&jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_ResolveArtifact{
		ResolveArtifact: &jobpb.ResolveArtifactsRequest{Artifacts: deps},
	}})
	if err != nil {
		return err
	}
	resp, err := stream.Recv()
	if err != nil {
		return err
	}
	s.logger.Debug("launcher resolved artifacts", "replacements", len(resp.GetResolveArtifactResponse().GetReplacements()))
	return nil
}

func (s *captureServer) Run(_ context.Context, req *jobpb.RunJobRequest) (*jobpb.RunJobResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.prepared[req.GetPreparationId()]
	if !ok {
		return nil, fmt.Errorf("unknown preparation id %q", req.GetPreparationId())
	}
	s.ran = append(s.ran, c)
	if len(s.ran) == 1 {
		close(s.ranOnce)
	}
	return &jobpb.RunJobResponse{JobId: req.GetPreparationId()}, nil
}

// The launcher runs with --async and does not wait, but a user's
// --async=false makes it follow the job; a captured job is DONE at once.

func (s *captureServer) GetState(context.Context, *jobpb.GetJobStateRequest) (*jobpb.JobStateEvent, error) {
	return &jobpb.JobStateEvent{State: jobpb.JobState_DONE}, nil
}

func (s *captureServer) GetStateStream(_ *jobpb.GetJobStateRequest, stream jobpb.JobService_GetStateStreamServer) error {
	return stream.Send(&jobpb.JobStateEvent{State: jobpb.JobState_DONE})
}

func (s *captureServer) GetMessageStream(_ *jobpb.JobMessagesRequest, stream jobpb.JobService_GetMessageStreamServer) error {
	return stream.Send(&jobpb.JobMessagesResponse{Response: &jobpb.JobMessagesResponse_StateResponse{
		StateResponse: &jobpb.JobStateEvent{State: jobpb.JobState_DONE},
	}})
}

func (s *captureServer) GetJobMetrics(context.Context, *jobpb.GetJobMetricsRequest) (*jobpb.GetJobMetricsResponse, error) {
	return &jobpb.GetJobMetricsResponse{Metrics: &jobpb.MetricResults{}}, nil
}

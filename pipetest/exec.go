package pipetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/proc"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/wrap"
)

// ExecConfig is what Run tells the program go test executes each test
// binary with: where pipelines go, and which binaries are workers.
type ExecConfig struct {
	// Endpoint is the job service the tests' pipelines are submitted to.
	Endpoint string `json:"endpoint"`
	// Workers are the directories of the packages whose test binaries
	// serve as their own workers.
	Workers []string `json:"workers"`
}

// ReadExecConfig reads the configuration Run wrote.
func ReadExecConfig(path string) (*ExecConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the test configuration: %w", err)
	}
	var c ExecConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading the test configuration %s: %w", path, err)
	}
	return &c, nil
}

// ExecOptions configure Exec.
type ExecOptions struct {
	Config ExecConfig
	// Argv is the test binary and the arguments go test gives it.
	Argv []string
	// Dir is where go test runs the binary: its package's directory.
	Dir string
	// Stdout and Stderr are go test's; workers' output goes to Stdout, so
	// that go test attaches it to the test that was running.
	Stdout, Stderr io.Writer
	// Signals are passed on to the test binary.
	Signals <-chan os.Signal
	Logger  *slog.Logger
}

// pipelineArgs send a test binary's pipelines to endpoint, with workers
// from the pool at pool. The SDK hashes the worker binary it is given in
// each pipeline's launch and stages it: an empty file makes both free, and
// the pool runs the test binary whatever the pipeline declares.
func pipelineArgs(endpoint, pool string) []string {
	return []string{
		"--endpoint=" + endpoint,
		"--environment_type=EXTERNAL",
		"--environment_config=" + pool,
		"--worker_binary=" + os.DevNull,
	}
}

// Exec runs one test binary as go test -exec would, and returns its exit
// code. A binary that is its own worker gets a pool that starts its
// workers, and arguments that send its pipelines to the configured runner
// with workers from that pool.
func Exec(ctx context.Context, o ExecOptions) (int, error) {
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	if len(o.Argv) == 0 {
		return 0, errors.New("no test binary to run")
	}
	bin, err := filepath.Abs(o.Argv[0])
	if err != nil {
		return 0, err
	}
	argv := slices.Clone(o.Argv)
	argv[0] = bin
	goos, goarch, err := wrap.BinaryPlatform(bin)
	if err != nil && !errors.Is(err, wrap.ErrNotELF) {
		return 0, fmt.Errorf("reading the test binary's platform: %w", err)
	}
	var emu []string
	if goos != "" {
		if emu, err = wrap.Emulator(goos, goarch); err != nil {
			return 0, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if slices.Contains(o.Config.Workers, o.Dir) {
		digests := digest.NewCache()
		sum, err := digests.Sum(ctx, bin)
		if err != nil {
			return 0, fmt.Errorf("hashing the test binary: %w", err)
		}
		pool, err := loopback.Start(ctx, loopback.Options{
			Dir:     o.Dir,
			Output:  o.Stdout,
			Logger:  log,
			Digests: digests,
			Worker:  beam.File{Path: bin, SHA256: sum.SHA256},
		})
		if err != nil {
			return 0, fmt.Errorf("starting the test binary's worker pool: %w", err)
		}
		defer pool.Close()
		go cancelOnFailure(ctx, o.Config.Endpoint, pool.Address(), pool.Failures(), o.Stdout, log)
		argv = slices.Concat(argv[:1], pipelineArgs(o.Config.Endpoint, pool.Address()), argv[1:])
	}
	res, err := proc.Run(ctx, proc.Cmd{
		Argv:   slices.Concat(emu, argv),
		Env:    os.Environ(),
		Dir:    o.Dir,
		Stdout: o.Stdout,
		Stderr: o.Stderr,
	}, proc.Options{Signals: o.Signals, Grace: 5 * time.Second, Logger: log})
	if err != nil {
		return 0, fmt.Errorf("starting the test binary: %w", err)
	}
	return res.Code(), nil
}

// cancelOnFailure reports each worker the pool could not keep running,
// and cancels the jobs whose workers come from that pool: the runner would
// otherwise wait minutes for a worker that will never connect, and the
// test with it.
func cancelOnFailure(ctx context.Context, endpoint, pool string, failures <-chan error, out io.Writer, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-failures:
			fmt.Fprintf(out, "beamctl: %v\n", err)
			if err := cancelJobsOf(ctx, endpoint, pool); err != nil {
				log.Warn("cannot cancel the jobs of a failed worker", "error", err)
			}
		}
	}
}

// cancelJobsOf cancels the running jobs at endpoint whose environment is
// the external pool at pool.
func cancelJobsOf(ctx context.Context, endpoint, pool string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := beam.DialRunner(endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := jobpb.NewJobServiceClient(conn)
	jobs, err := client.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return err
	}
	for _, j := range jobs.GetJobInfo() {
		if beam.Terminal(j.GetState()) {
			continue
		}
		p, err := client.GetPipeline(ctx, &jobpb.GetJobPipelineRequest{JobId: j.GetJobId()})
		if err != nil || !usesPool(p.GetPipeline(), pool) {
			continue
		}
		if _, err := client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()}); err != nil {
			return err
		}
	}
	return nil
}

func usesPool(p *pipepb.Pipeline, pool string) bool {
	for _, env := range p.GetComponents().GetEnvironments() {
		if env.GetUrn() != beam.ExternalEnvURN {
			continue
		}
		var ext pipepb.ExternalPayload
		if proto.Unmarshal(env.GetPayload(), &ext) == nil && ext.GetEndpoint().GetUrl() == pool {
			return true
		}
	}
	return false
}

// Package boot is Beam's container contract, as a worker's entrypoint
// performs it: ask the runner's provision service for the pipeline options
// and artifacts, retrieve the artifacts into a directory (confined to it,
// each checked against its sha256), and execute the Go worker binary with the
// flags and environment the Beam Go SDK expects.
//
// Boot does this once, in the foreground, as a container's entrypoint does.
// Pool serves BeamFnExternalWorkerPool and does it for each StartWorker, for
// runners that cannot start workers themselves.
//
// How the worker process then starts and is supervised (natively, under
// qemu-user or Delve, through the per-worker reaper) is package wrap's:
// the contract prepares a wrap.Launch and hands it to a wrap.Wrapper.
//
// The package depends only on the standard library, gRPC and Beam's model
// protos, so it can be the whole of a small image entrypoint.
package boot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/wrap"
)

// Environment parameters of beamctl's jobs. ParamWorkerBinary hands a pool
// on the submitter's machine the worker binary directly (a LocalBinary
// finds it); ParamWorkerSHA256 is the sha256 of the worker the job
// expects, which a worker baked into an image must match too.
const (
	ParamWorkerBinary = "beamctl_worker_binary"
	ParamWorkerSHA256 = "beamctl_worker_sha256"
)

// Contract is what a runner hands a worker's boot under Beam's container
// contract: the worker's id and the runner's endpoints. The provision
// service's answer overrides the other endpoints.
type Contract struct {
	ID                string
	ProvisionEndpoint string
	ArtifactEndpoint  string
	ControlEndpoint   string
	LoggingEndpoint   string
	// Params are the external environment's parameters, when a worker pool
	// is asked for the worker.
	Params map[string]string
}

func contractOf(req *fnpb.StartWorkerRequest) Contract {
	return Contract{
		ID:                req.GetWorkerId(),
		ProvisionEndpoint: req.GetProvisionEndpoint().GetUrl(),
		ArtifactEndpoint:  req.GetArtifactEndpoint().GetUrl(),
		ControlEndpoint:   req.GetControlEndpoint().GetUrl(),
		LoggingEndpoint:   req.GetLoggingEndpoint().GetUrl(),
		Params:            req.GetParams(),
	}
}

// Args are the contract as the arguments of a boot command such as
// beamctl boot. The worker digest the job expects travels as
// --worker-sha256.
func (c Contract) Args(semiPersistDir string) []string {
	args := []string{
		"--id=" + c.ID,
		"--provision_endpoint=" + c.ProvisionEndpoint,
		"--artifact_endpoint=" + c.ArtifactEndpoint,
		"--control_endpoint=" + c.ControlEndpoint,
		"--logging_endpoint=" + c.LoggingEndpoint,
		"--semi_persist_dir=" + semiPersistDir,
	}
	if want := c.Params[ParamWorkerSHA256]; want != "" && c.Params[ParamWorkerBinary] == "" {
		args = append(args, "--worker-sha256="+want)
	}
	return args
}

// Unquote strips one pair of quotes around each value: prism's PROCESS
// environment passes --id='ID' without a shell to remove them.
func (c *Contract) Unquote() {
	for _, p := range []*string{&c.ID, &c.ProvisionEndpoint, &c.LoggingEndpoint, &c.ArtifactEndpoint, &c.ControlEndpoint} {
		*p = Unquote(*p)
	}
}

// Unquote strips one pair of matching quotes around s.
func Unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// LocalBinary finds the worker binary for c on this machine, for pools that
// serve the machine the job was submitted from, and returns it open and
// verified: the worker is started from that open file. It returns nil to
// have the binary retrieved from the runner, and an error when the worker
// must not start at all.
type LocalBinary func(ctx context.Context, c Contract, deps []*pipepb.ArtifactInformation) (*os.File, error)

// OpenVerified opens the worker binary at path and checks the open file
// against want, for a LocalBinary to return: the worker is then started
// from that open file, so nothing can swap another file in at path between
// the check and the start.
func OpenVerified(ctx context.Context, digests *digest.Cache, path, want string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	err = digests.VerifyOpen(ctx, path, f, want)
	if _, ok := err.(*digest.MismatchError); ok {
		err = fmt.Errorf("worker binary %s does not match the pipeline's sha256 %s: rebuild the pipeline and submit it again", path, digest.Short(want))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// config says how to perform the contract here.
type config struct {
	logger  *slog.Logger
	wrapper wrap.Wrapper
	local   LocalBinary
	// dir is the worker's semi-persistent directory; artifacts are
	// retrieved into its "staged" directory.
	dir string
	// binDir, if set, receives a copy of the retrieved worker binary to
	// execute.
	binDir string
	// allowUnverified runs a retrieved worker binary that declares no
	// sha256.
	allowUnverified bool
	// maxArtifactBytes bounds the bytes of the artifacts retrieved; 0 is no
	// bound.
	maxArtifactBytes int64
	// baked, if set, is the worker binary of the image boot runs in.
	baked *Baked
}

// prepare performs the container contract up to the worker's command line:
// provision info, pipeline options file, worker binary.
func prepare(ctx context.Context, c Contract, cfg config) (_ *wrap.Launch, err error) {
	info, err := provision(ctx, c.ProvisionEndpoint, c.ID)
	if err != nil {
		return nil, err
	}
	control := cmp.Or(info.GetControlEndpoint().GetUrl(), c.ControlEndpoint)
	logging := cmp.Or(info.GetLoggingEndpoint().GetUrl(), c.LoggingEndpoint)
	artifacts := cmp.Or(info.GetArtifactEndpoint().GetUrl(), c.ArtifactEndpoint)
	if control == "" || logging == "" {
		return nil, errors.New("the runner gave no control or logging endpoint for the worker")
	}

	bin, file, err := cfg.workerBinary(ctx, c, info.GetDependencies(), artifacts)
	if err != nil {
		return nil, err
	}
	l := &wrap.Launch{ID: c.ID, Binary: bin}
	exe := bin
	if file != nil {
		defer func() {
			if err != nil {
				file.Close()
			}
		}()
		// The worker is executed from the verified open file, passed to it
		// as descriptor 3.
		l.Files = []*os.File{file}
		exe = "/proc/self/fd/3"
	}
	opts := []byte("{}")
	if po := info.GetPipelineOptions(); po != nil {
		if opts, err = protojson.Marshal(po); err != nil {
			return nil, fmt.Errorf("encode pipeline options: %w", err)
		}
	}
	optsFile := filepath.Join(cfg.dir, "pipeline_options.json")
	if err := os.WriteFile(optsFile, opts, 0o600); err != nil {
		return nil, fmt.Errorf("write pipeline options: %w", err)
	}
	l.Argv = []string{exe,
		"--worker=true",
		"--id=" + c.ID,
		"--logging_endpoint=" + logging,
		"--control_endpoint=" + control,
		"--semi_persist_dir=" + cfg.dir,
	}
	l.Env = map[string]string{
		"PIPELINE_OPTIONS_FILE": optsFile,
		"RUNNER_CAPABILITIES":   strings.Join(info.GetRunnerCapabilities(), " "),
		"STATUS_ENDPOINT":       info.GetStatusEndpoint().GetUrl(),
	}
	var goos, goarch string
	if file != nil {
		// The platform of the file that was checked and will run.
		goos, goarch, err = wrap.Platform(file)
	} else {
		goos, goarch, err = wrap.BinaryPlatform(bin)
	}
	switch {
	case errors.Is(err, wrap.ErrNotELF):
		// Scripts and binaries of this platform's own format run as they are.
	case err != nil:
		return nil, fmt.Errorf("inspect worker binary %s: %w", bin, err)
	default:
		l.OS, l.Arch = goos, goarch
	}
	if err := cfg.wrapper.Wrap(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

// workerBinary returns the path of the worker binary to execute: the
// local one, where the caller allows it; the image's, unless the job stages
// another; otherwise the one retrieved from the runner with the other
// artifacts. A returned file is the verified binary to execute.
func (cfg config) workerBinary(ctx context.Context, c Contract, deps []*pipepb.ArtifactInformation, endpoint string) (string, *os.File, error) {
	if cfg.local != nil {
		f, err := cfg.local(ctx, c, deps)
		if err != nil {
			return "", nil, err
		}
		if f != nil {
			return f.Name(), f, nil
		}
	}
	want := c.Params[ParamWorkerSHA256]
	if c.Params[ParamWorkerBinary] != "" {
		// A binary on the submitter's machine: not this one's.
		want = ""
	}
	if cfg.baked != nil {
		f, rest, err := cfg.bakedWorker(ctx, want, deps)
		if err != nil {
			return "", nil, err
		}
		if f != nil {
			if len(rest) > 0 {
				if endpoint == "" {
					f.Close()
					return "", nil, errors.New("the runner gave no artifact endpoint to fetch the job's artifacts from")
				}
				if _, err := retrieveAll(ctx, endpoint, c.ID, rest, false, filepath.Join(cfg.dir, "staged"), cfg.allowUnverified, cfg.maxArtifactBytes, cfg.logger); err != nil {
					f.Close()
					return "", nil, err
				}
			}
			return f.Name(), f, nil
		}
	}
	if len(deps) == 0 {
		if want != "" {
			// Submitted with its worker in an image: this pool has none.
			return "", nil, fmt.Errorf("the job's worker (sha256 %s) comes in its image, and this worker pool has no worker baked in: run the worker image as the pool, or submit the job without the image so that the worker is staged", digest.Short(want))
		}
		return "", nil, errors.New("the pipeline has no artifacts, so no Go worker binary: submit the pipeline with its worker binary")
	}
	i, err := beam.WorkerArtifact(deps)
	if err != nil {
		return "", nil, err
	}
	if want != "" {
		if got, err := beam.DeclaredSHA256(deps[i]); err != nil {
			return "", nil, err
		} else if got != want {
			return "", nil, fmt.Errorf("the job stages a worker binary with sha256 %s but its environment expects %s: submit the pipeline again", digest.Short(got), digest.Short(want))
		}
	}
	if endpoint == "" {
		return "", nil, errors.New("the runner gave no artifact endpoint to fetch the worker binary from")
	}
	staged, err := retrieveAll(ctx, endpoint, c.ID, deps, true, filepath.Join(cfg.dir, "staged"), cfg.allowUnverified, cfg.maxArtifactBytes, cfg.logger)
	if err != nil {
		return "", nil, err
	}
	infos := make([]*pipepb.ArtifactInformation, len(staged))
	for i, s := range staged {
		infos[i] = s.info
	}
	i, err = beam.WorkerArtifact(infos)
	if err != nil {
		return "", nil, err
	}
	bin := staged[i].path
	if cfg.binDir != "" {
		dst := filepath.Join(cfg.binDir, "worker")
		if err := copyExecutable(bin, dst, staged[i].sha256); err != nil {
			return "", nil, fmt.Errorf("copy worker binary to %s: %w", cfg.binDir, err)
		}
		bin = dst
	}
	cfg.logger.Debug("fetched worker binary", "path", bin)
	return bin, nil, nil
}

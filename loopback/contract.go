package loopback

import (
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

	"github.com/beamctl/beamctl/stage"
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
	// Params are the external environment's parameters; see
	// LocalWorkerParams.
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

// bootFlags are the contract as the flags of a boot command such as
// beamctl boot.
func (c Contract) bootFlags(semiPersistDir string) []string {
	return []string{
		"--id=" + c.ID,
		"--provision_endpoint=" + c.ProvisionEndpoint,
		"--artifact_endpoint=" + c.ArtifactEndpoint,
		"--control_endpoint=" + c.ControlEndpoint,
		"--logging_endpoint=" + c.LoggingEndpoint,
		"--semi_persist_dir=" + semiPersistDir,
	}
}

// bootConfig says how to perform the contract here.
type bootConfig struct {
	logger   *slog.Logger
	emulator func(goos, goarch string) ([]string, error)
	// local lets the worker binary be a file on this machine, named by the
	// environment's parameters or by the artifact itself, when its sha256
	// matches: the submitter's machine has it already.
	local bool
	// dir is the worker's semi-persistent directory; artifacts are
	// retrieved into its "staged" directory.
	dir string
	// binDir, if set, receives a copy of the retrieved worker binary to
	// execute.
	binDir string
}

// launch is a worker ready to start: its command line and what the
// contract adds to its environment.
type launch struct {
	argv []string
	env  map[string]string
}

// prepare performs the container contract up to the worker's command line:
// provision info, pipeline options file, worker binary.
func prepare(ctx context.Context, c Contract, cfg bootConfig) (*launch, error) {
	info, err := provision(ctx, c.ProvisionEndpoint, c.ID)
	if err != nil {
		return nil, err
	}
	control := firstNonEmpty(info.GetControlEndpoint().GetUrl(), c.ControlEndpoint)
	logging := firstNonEmpty(info.GetLoggingEndpoint().GetUrl(), c.LoggingEndpoint)
	artifacts := firstNonEmpty(info.GetArtifactEndpoint().GetUrl(), c.ArtifactEndpoint)
	if control == "" || logging == "" {
		return nil, errors.New("the runner gave no control or logging endpoint for the worker")
	}

	bin, err := cfg.workerBinary(ctx, c, info.GetDependencies(), artifacts)
	if err != nil {
		return nil, err
	}
	argv, err := command(bin, cfg.emulator)
	if err != nil {
		return nil, err
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
	return &launch{
		argv: append(argv,
			"--worker=true",
			"--id="+c.ID,
			"--logging_endpoint="+logging,
			"--control_endpoint="+control,
			"--semi_persist_dir="+cfg.dir,
		),
		env: map[string]string{
			"PIPELINE_OPTIONS_FILE": optsFile,
			"RUNNER_CAPABILITIES":   strings.Join(info.GetRunnerCapabilities(), " "),
			"STATUS_ENDPOINT":       info.GetStatusEndpoint().GetUrl(),
		},
	}, nil
}

// workerBinary returns the path of the worker binary to execute: where
// allowed, a file on this machine matching the pipeline's sha256;
// otherwise the one retrieved from the runner with the other artifacts.
func (cfg bootConfig) workerBinary(ctx context.Context, c Contract, deps []*pipepb.ArtifactInformation, endpoint string) (string, error) {
	var local error
	if cfg.local {
		bin, err := localWorker(ctx, c.Params)
		if err != nil || bin != "" {
			return bin, err
		}
		i, err := workerArtifact(deps)
		if err != nil {
			return "", err
		}
		path, want, err := filePayload(deps[i])
		if err != nil {
			return "", err
		}
		if path != "" {
			got, _, err := stage.FileSHA256(ctx, path)
			switch {
			case err != nil:
				local = err
			case want == "" || got == want:
				cfg.logger.Debug("using local worker binary", "path", path)
				return path, nil
			default:
				local = mismatch(path, want, got)
			}
			cfg.logger.Debug("local worker binary unusable, fetching it from the runner", "path", path, "reason", local)
		}
	}

	if len(deps) == 0 {
		return "", errors.New("the pipeline has no artifacts, so no Go worker binary: submit the pipeline with its worker binary")
	}
	if endpoint == "" {
		if local != nil {
			return "", local
		}
		return "", errors.New("the runner gave no artifact endpoint to fetch the worker binary from")
	}
	staged, err := materialize(ctx, endpoint, c.ID, deps, filepath.Join(cfg.dir, "staged"), cfg.logger)
	if err != nil {
		if local != nil {
			return "", fmt.Errorf("%w; fetching it from the runner failed too: %v", local, err)
		}
		return "", err
	}
	infos := make([]*pipepb.ArtifactInformation, len(staged))
	for i, s := range staged {
		infos[i] = s.info
	}
	i, err := workerArtifact(infos)
	if err != nil {
		return "", err
	}
	bin := staged[i].path
	if cfg.binDir != "" {
		dst := filepath.Join(cfg.binDir, "worker")
		if err := copyExecutable(bin, dst); err != nil {
			return "", fmt.Errorf("copy worker binary to %s: %w", cfg.binDir, err)
		}
		bin = dst
	}
	cfg.logger.Debug("fetched worker binary", "path", bin)
	return bin, nil
}

// command is how to execute bin here: directly, or through an emulator
// when it is built for another platform.
func command(bin string, emulator func(goos, goarch string) ([]string, error)) ([]string, error) {
	goos, goarch, err := binaryPlatform(bin)
	switch {
	case errors.Is(err, errNotELF):
		// Scripts and binaries of this platform's own format run as they are.
		return []string{bin}, nil
	case err != nil:
		return nil, fmt.Errorf("inspect worker binary: %w", err)
	}
	emu, err := emulator(goos, goarch)
	if err != nil {
		return nil, err
	}
	return append(append([]string(nil), emu...), bin), nil
}

func workerEnv(base []string, set map[string]string) []string {
	env := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

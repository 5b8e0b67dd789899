package submit

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/stage"
	"google.golang.org/protobuf/proto"
)

// Environment URNs of the Beam model.
const (
	DockerEnvURN   = "beam:env:docker:v1"
	ProcessEnvURN  = "beam:env:process:v1"
	ExternalEnvURN = "beam:env:external:v1"
)

// goEnvID is the environment id the Go SDK gives its own environment.
const goEnvID = "go"

// UseExternalEnvironment makes the pipeline's Go environment(s) ask the
// worker pool at poolAddress (BeamFnExternalWorkerPool) for workers. The
// worker artifact stays declared, so the pool can fetch it.
func UseExternalEnvironment(p *pipepb.Pipeline, poolAddress string) error {
	if poolAddress == "" {
		return errors.New("external environment needs a worker pool address")
	}
	return setGoEnvironments(p, ExternalEnvURN, &pipepb.ExternalPayload{Endpoint: &pipepb.ApiServiceDescriptor{Url: poolAddress}})
}

// UseLocalWorkerPool is UseExternalEnvironment for a pool on this machine
// that is handed the worker through params (loopback.LocalWorkerParams):
// the worker artifact is dropped, so the runner stages nothing. An
// in-process runner keeps staged artifacts whole in memory.
func UseLocalWorkerPool(p *pipepb.Pipeline, poolAddress string, params map[string]string) error {
	if poolAddress == "" {
		return errors.New("external environment needs a worker pool address")
	}
	ids, err := goEnvironments(p)
	if err != nil {
		return err
	}
	payload := &pipepb.ExternalPayload{Endpoint: &pipepb.ApiServiceDescriptor{Url: poolAddress}, Params: maps.Clone(params)}
	if err := setGoEnvironments(p, ExternalEnvURN, payload); err != nil {
		return err
	}
	for _, id := range ids {
		env := p.GetComponents().GetEnvironments()[id]
		env.Dependencies = slices.DeleteFunc(env.Dependencies, func(d *pipepb.ArtifactInformation) bool {
			return d.GetRoleUrn() == stage.GoWorkerRoleURN
		})
	}
	return nil
}

// UseDockerEnvironment makes the runner start workers from image, which
// boots by fetching the worker artifact.
func UseDockerEnvironment(p *pipepb.Pipeline, image string) error {
	if image == "" {
		return errors.New("docker environment needs an image reference")
	}
	return setGoEnvironments(p, DockerEnvURN, &pipepb.DockerPayload{ContainerImage: image})
}

// UseProcessEnvironment makes the runner start workers by executing command
// (which follows the Beam container contract) with env added to its
// environment.
func UseProcessEnvironment(p *pipepb.Pipeline, command string, env map[string]string) error {
	if command == "" {
		return errors.New("process environment needs a command")
	}
	return setGoEnvironments(p, ProcessEnvURN, &pipepb.ProcessPayload{Command: command, Env: maps.Clone(env)})
}

func setGoEnvironments(p *pipepb.Pipeline, urn string, payload proto.Message) error {
	ids, err := goEnvironments(p)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encoding %s payload: %w", urn, err)
	}
	for _, id := range ids {
		env := p.GetComponents().GetEnvironments()[id]
		env.Urn = urn
		env.Payload = b
	}
	return nil
}

// goEnvironments returns the ids of the environments that run Go workers:
// those declaring a Go worker binary artifact, or else the Go SDK's default
// environment. Other environments (cross-language expansions) are left alone.
func goEnvironments(p *pipepb.Pipeline) ([]string, error) {
	envs := p.GetComponents().GetEnvironments()
	var ids []string
	for id, env := range envs {
		for _, dep := range env.GetDependencies() {
			if dep.GetRoleUrn() == stage.GoWorkerRoleURN {
				ids = append(ids, id)
				break
			}
		}
	}
	if len(ids) == 0 {
		if _, ok := envs[goEnvID]; ok {
			ids = append(ids, goEnvID)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("pipeline has no Go environment (none of %q declares a Go worker binary); was it built with the Beam Go SDK?", slices.Sorted(maps.Keys(envs)))
	}
	slices.Sort(ids)
	return ids, nil
}

package beam

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// goEnvID is the environment id the Go SDK gives its own environment.
const goEnvID = "go"

// GoEnvironments returns the sorted ids of the environments that run Go
// workers: those declaring a Go worker binary artifact, or else the Go SDK's
// default environment. Other environments (cross-language expansions) are
// left alone by every rewrite.
func GoEnvironments(p *pipepb.Pipeline) ([]string, error) {
	envs := p.GetComponents().GetEnvironments()
	var ids []string
	for id, env := range envs {
		if slices.ContainsFunc(env.GetDependencies(), IsGoWorker) {
			ids = append(ids, id)
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

// UseExternal makes the pipeline's Go environments ask the worker pool at
// address (BeamFnExternalWorkerPool) for workers, with params in the
// payload.
func UseExternal(p *pipepb.Pipeline, address string, params map[string]string) error {
	if address == "" {
		return errors.New("external environment needs a worker pool address")
	}
	return setGoEnvironments(p, ExternalEnvURN, &pipepb.ExternalPayload{Endpoint: &pipepb.ApiServiceDescriptor{Url: address}, Params: maps.Clone(params)})
}

// UseDocker makes the runner start workers from image.
func UseDocker(p *pipepb.Pipeline, image string) error {
	if image == "" {
		return errors.New("docker environment needs an image reference")
	}
	return setGoEnvironments(p, DockerEnvURN, &pipepb.DockerPayload{ContainerImage: image})
}

// UseProcess makes the runner start workers by executing command (which
// follows the Beam container contract) with env added to its environment.
func UseProcess(p *pipepb.Pipeline, command string, env map[string]string) error {
	if command == "" {
		return errors.New("process environment needs a command")
	}
	return setGoEnvironments(p, ProcessEnvURN, &pipepb.ProcessPayload{Command: command, Env: maps.Clone(env)})
}

// DropWorkerArtifacts removes the Go worker binary from the Go
// environments' artifacts, for runners whose workers get the binary another
// way.
func DropWorkerArtifacts(p *pipepb.Pipeline) error {
	ids, err := GoEnvironments(p)
	if err != nil {
		return err
	}
	for _, id := range ids {
		env := p.GetComponents().GetEnvironments()[id]
		env.Dependencies = slices.DeleteFunc(env.Dependencies, IsGoWorker)
	}
	return nil
}

func setGoEnvironments(p *pipepb.Pipeline, urn string, payload proto.Message) error {
	ids, err := GoEnvironments(p)
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

package beam_test

import (
	"strings"
	"testing"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/internal/beam"
	"google.golang.org/protobuf/proto"
)

// capturedShape is a pipeline as the Go SDK emits it, with a cross-language
// environment beside the Go one.
func capturedShape() *pipepb.Pipeline {
	worker := beam.FileArtifact(beam.File{Path: "/dist/worker", SHA256: "ab"}, beam.GoWorkerRoleURN)
	docker, _ := proto.Marshal(&pipepb.DockerPayload{ContainerImage: "apache/beam_go_sdk:2.77.0"})
	java, _ := proto.Marshal(&pipepb.DockerPayload{ContainerImage: "apache/beam_java_sdk:2.77.0"})
	return &pipepb.Pipeline{Components: &pipepb.Components{Environments: map[string]*pipepb.Environment{
		"go":   {Urn: beam.DockerEnvURN, Payload: docker, Capabilities: []string{"beam:coder:bytes:v1"}, Dependencies: []*pipepb.ArtifactInformation{worker}},
		"java": {Urn: beam.DockerEnvURN, Payload: java},
	}}}
}

func TestUseEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		apply   func(*pipepb.Pipeline) error
		urn     string
		payload proto.Message
		decoded proto.Message
	}{
		{
			name:    "external",
			apply:   func(p *pipepb.Pipeline) error { return beam.UseExternal(p, "127.0.0.1:50000", nil) },
			urn:     beam.ExternalEnvURN,
			payload: &pipepb.ExternalPayload{Endpoint: &pipepb.ApiServiceDescriptor{Url: "127.0.0.1:50000"}},
			decoded: &pipepb.ExternalPayload{},
		},
		{
			name: "docker",
			apply: func(p *pipepb.Pipeline) error {
				return beam.UseDocker(p, "registry.example/worker@sha256:00")
			},
			urn:     beam.DockerEnvURN,
			payload: &pipepb.DockerPayload{ContainerImage: "registry.example/worker@sha256:00"},
			decoded: &pipepb.DockerPayload{},
		},
		{
			name: "process",
			apply: func(p *pipepb.Pipeline) error {
				return beam.UseProcess(p, "/usr/bin/beamctl", map[string]string{"BEAMCTL_BOOT": "1"})
			},
			urn:     beam.ProcessEnvURN,
			payload: &pipepb.ProcessPayload{Command: "/usr/bin/beamctl", Env: map[string]string{"BEAMCTL_BOOT": "1"}},
			decoded: &pipepb.ProcessPayload{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := capturedShape()
			before := proto.Clone(p).(*pipepb.Pipeline)
			if err := tt.apply(p); err != nil {
				t.Fatal(err)
			}
			env := p.GetComponents().GetEnvironments()["go"]
			if env.GetUrn() != tt.urn {
				t.Errorf("go environment urn = %s; want %s", env.GetUrn(), tt.urn)
			}
			if err := proto.Unmarshal(env.GetPayload(), tt.decoded); err != nil || !proto.Equal(tt.decoded, tt.payload) {
				t.Errorf("go environment payload = %v (%v); want %v", tt.decoded, err, tt.payload)
			}
			old := before.GetComponents().GetEnvironments()["go"]
			if !proto.Equal(&pipepb.Environment{Dependencies: env.Dependencies, Capabilities: env.Capabilities}, &pipepb.Environment{Dependencies: old.Dependencies, Capabilities: old.Capabilities}) {
				t.Errorf("go environment lost its dependencies or capabilities: %v", env)
			}
			if !proto.Equal(p.GetComponents().GetEnvironments()["java"], before.GetComponents().GetEnvironments()["java"]) {
				t.Error("the cross-language environment was rewritten")
			}
		})
	}
}

func TestUseEnvironmentErrors(t *testing.T) {
	noGo := &pipepb.Pipeline{Components: &pipepb.Components{Environments: map[string]*pipepb.Environment{"java": {}}}}
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"no Go environment", beam.UseExternal(noGo, "127.0.0.1:1", nil), `pipeline has no Go environment (none of ["java"]`},
		{"empty pool address", beam.UseExternal(capturedShape(), "", nil), "needs a worker pool address"},
		{"empty image", beam.UseDocker(capturedShape(), ""), "needs an image"},
		{"empty command", beam.UseProcess(capturedShape(), "", nil), "needs a command"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr) {
			t.Errorf("%s: error = %v; want %q", tt.name, tt.err, tt.wantErr)
		}
	}
}

func TestExternalWithoutWorkerArtifact(t *testing.T) {
	p := capturedShape()
	params := map[string]string{"beamctl_worker_binary": "/dist/worker", "beamctl_worker_sha256": "ab"}
	if err := beam.UseExternal(p, "127.0.0.1:50000", params); err != nil {
		t.Fatal(err)
	}
	if err := beam.DropWorkerArtifacts(p); err != nil {
		t.Fatal(err)
	}
	env := p.GetComponents().GetEnvironments()["go"]
	var got pipepb.ExternalPayload
	if err := proto.Unmarshal(env.GetPayload(), &got); err != nil {
		t.Fatal(err)
	}
	want := &pipepb.ExternalPayload{Endpoint: &pipepb.ApiServiceDescriptor{Url: "127.0.0.1:50000"}, Params: params}
	if env.GetUrn() != beam.ExternalEnvURN || !proto.Equal(&got, want) {
		t.Errorf("go environment = %s %v; want %s %v", env.GetUrn(), &got, beam.ExternalEnvURN, want)
	}
	// Nothing is left for a runner to stage: the pool gets the binary
	// from the parameters.
	if len(env.GetDependencies()) != 0 {
		t.Errorf("the worker artifact is still declared: %v", env.GetDependencies())
	}
	if len(p.GetComponents().GetEnvironments()["java"].GetDependencies()) != 0 || p.GetComponents().GetEnvironments()["java"].GetUrn() != beam.DockerEnvURN {
		t.Error("the cross-language environment was rewritten")
	}
}

// Package beam is beamctl's one home for the Beam model's vocabulary: the
// URNs it speaks, the payloads of file artifacts, the worker id metadata,
// how a worker connects to its runner's services, and how a pipeline's Go
// environments are found and rewritten.
package beam

import (
	"context"
	"fmt"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Artifact type and role URNs.
const (
	FileArtifactURN  = "beam:artifact:type:file:v1"
	URLArtifactURN   = "beam:artifact:type:url:v1"
	StagingToRoleURN = "beam:artifact:role:staging_to:v1"
	GoWorkerRoleURN  = "beam:artifact:role:go_worker_binary:v1"
)

// Environment URNs.
const (
	DockerEnvURN   = "beam:env:docker:v1"
	ProcessEnvURN  = "beam:env:process:v1"
	ExternalEnvURN = "beam:env:external:v1"
)

// ParDoURN is the URN of a transform that runs a DoFn.
const ParDoURN = "beam:transform:pardo:v1"

// CombineURNPrefix begins the URNs of the combining transforms and of the
// phases a runner lifts a combine into; all carry a CombinePayload.
const CombineURNPrefix = "beam:transform:combine_"

// GoDoFnURN marks a DoFn or CombineFn of the Go SDK: its payload is the
// SDK's own description of the function, a base64 TransformPayload.
const GoDoFnURN = "beam:go:transform:dofn:v1"

// File is a local file a pipeline declares as an artifact.
type File struct {
	// Path is the file's path exactly as the artifact's ArtifactFilePayload
	// names it.
	Path string
	// SHA256 is the declared lower-case hex digest; empty means the pipeline
	// declared none and the content is not checked.
	SHA256 string
}

// FilePayload decodes the ArtifactFilePayload of a file artifact.
func FilePayload(a *pipepb.ArtifactInformation) (File, error) {
	var pl pipepb.ArtifactFilePayload
	if err := proto.Unmarshal(a.GetTypePayload(), &pl); err != nil {
		return File{}, fmt.Errorf("decoding file artifact payload: %w", err)
	}
	return File{Path: pl.GetPath(), SHA256: pl.GetSha256()}, nil
}

// FileArtifact builds a file artifact with the given role.
func FileArtifact(f File, roleURN string) *pipepb.ArtifactInformation {
	pl, err := proto.Marshal(&pipepb.ArtifactFilePayload{Path: f.Path, Sha256: f.SHA256})
	if err != nil {
		// Marshalling two strings cannot fail.
		panic(err)
	}
	return &pipepb.ArtifactInformation{TypeUrn: FileArtifactURN, TypePayload: pl, RoleUrn: roleURN}
}

// IsGoWorker reports whether a is the Go worker binary.
func IsGoWorker(a *pipepb.ArtifactInformation) bool { return a.GetRoleUrn() == GoWorkerRoleURN }

// WorkerArtifact picks the Go worker binary among an environment's
// artifacts: the one with the worker role, or the only one.
func WorkerArtifact(deps []*pipepb.ArtifactInformation) (int, error) {
	for i, d := range deps {
		if IsGoWorker(d) {
			return i, nil
		}
	}
	if len(deps) == 1 {
		return 0, nil
	}
	return 0, fmt.Errorf("none of the pipeline's %d artifacts is a Go worker binary (role %s): submit the pipeline with its worker binary", len(deps), GoWorkerRoleURN)
}

// DeclaredSHA256 is the digest an artifact's payload declares, or "" for
// types that declare none.
func DeclaredSHA256(a *pipepb.ArtifactInformation) (string, error) {
	switch a.GetTypeUrn() {
	case FileArtifactURN:
		f, err := FilePayload(a)
		return f.SHA256, err
	case URLArtifactURN:
		var u pipepb.ArtifactUrlPayload
		if err := proto.Unmarshal(a.GetTypePayload(), &u); err != nil {
			return "", fmt.Errorf("decoding url artifact payload: %w", err)
		}
		return u.GetSha256(), nil
	}
	return "", nil
}

// WithWorkerID marks outgoing calls as made for worker (or preparation) id,
// which is how a runner serving several workers on one endpoint tells them
// apart.
func WithWorkerID(ctx context.Context, id string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "worker_id", id)
}

// maxRecvMsgSize bounds one message from the runner, after decompression:
// the largest real one is an artifact chunk, and prism sends 128 MiB chunks.
const maxRecvMsgSize = 128<<20 + 1<<20

// DialRunner connects to one of the runner's services at url, as a worker
// and its boot do.
func DialRunner(url string) (*grpc.ClientConn, error) {
	return grpc.NewClient(url,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)))
}

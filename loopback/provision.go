package loopback

import (
	"context"
	"errors"
	"fmt"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/stage"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

const (
	urnFileArtifact   = "beam:artifact:type:file:v1"
	urnURLArtifact    = "beam:artifact:type:url:v1"
	urnStagingTo      = "beam:artifact:role:staging_to:v1"
	urnGoWorkerBinary = "beam:artifact:role:go_worker_binary:v1"
)

// withWorkerID marks calls as made for worker id, which is how a runner
// serving several workers on one endpoint (prism does) tells them apart.
func withWorkerID(ctx context.Context, id string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "worker_id", id)
}

func dial(url string) (*grpc.ClientConn, error) {
	return grpc.NewClient(url,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
}

// provision fetches the worker's provision info from the runner.
func provision(ctx context.Context, endpoint, id string) (*fnpb.ProvisionInfo, error) {
	if endpoint == "" {
		return nil, errors.New("the runner gave no provision endpoint for the worker")
	}
	conn, err := dial(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to provision service %s: %w", endpoint, err)
	}
	defer conn.Close()
	resp, err := fnpb.NewProvisionServiceClient(conn).GetProvisionInfo(withWorkerID(ctx, id), &fnpb.GetProvisionInfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return nil, fmt.Errorf("get provision info from %s: %w", endpoint, err)
	}
	if resp.GetInfo() == nil {
		return nil, fmt.Errorf("provision service %s returned no provision info", endpoint)
	}
	return resp.GetInfo(), nil
}

// workerArtifact picks the Go worker binary among the environment's
// artifacts: the one with the worker role, or the only one.
func workerArtifact(deps []*pipepb.ArtifactInformation) (int, error) {
	for i, d := range deps {
		if d.GetRoleUrn() == urnGoWorkerBinary {
			return i, nil
		}
	}
	if len(deps) == 1 {
		return 0, nil
	}
	return 0, fmt.Errorf("none of the pipeline's %d artifacts is a Go worker binary (role %s): submit the pipeline with its worker binary", len(deps), urnGoWorkerBinary)
}

// filePayload returns the path and sha256 a file artifact names; both are
// empty for other artifact types.
func filePayload(a *pipepb.ArtifactInformation) (path, sha string, err error) {
	if a.GetTypeUrn() != urnFileArtifact {
		return "", "", nil
	}
	var fp pipepb.ArtifactFilePayload
	if err := proto.Unmarshal(a.GetTypePayload(), &fp); err != nil {
		return "", "", fmt.Errorf("decode file artifact: %w", err)
	}
	return fp.GetPath(), fp.GetSha256(), nil
}

// Environment parameters that hand the pool a worker binary on this
// machine directly. A runner in this process (the embedded runner) would
// otherwise copy the whole binary into its memory to stage it.
const (
	ParamWorkerBinary = "beamctl_worker_binary"
	ParamWorkerSHA256 = "beamctl_worker_sha256"
)

// LocalWorkerParams are the external environment parameters that make the
// pool run the worker at path, after checking it against sha256.
func LocalWorkerParams(path, sha256 string) map[string]string {
	return map[string]string{ParamWorkerBinary: path, ParamWorkerSHA256: sha256}
}

// localWorker returns the worker binary named by the parameters, checked
// against their sha256, or "" when they name none.
func localWorker(ctx context.Context, params map[string]string) (string, error) {
	path := params[ParamWorkerBinary]
	if path == "" {
		return "", nil
	}
	want := params[ParamWorkerSHA256]
	if want == "" {
		return "", fmt.Errorf("worker binary %s comes without its sha256 (%s): submit it with both parameters", path, ParamWorkerSHA256)
	}
	got, _, err := stage.FileSHA256(ctx, path)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", mismatch(path, want, got)
	}
	return path, nil
}

func mismatch(path, want, got string) error {
	return fmt.Errorf("worker binary %s does not match the pipeline's sha256 %s (it has %s): rebuild the pipeline and submit it again", path, want, got)
}

package loopback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

const (
	urnFileArtifact   = "beam:artifact:type:file:v1"
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
func workerArtifact(deps []*pipepb.ArtifactInformation) (*pipepb.ArtifactInformation, error) {
	for _, d := range deps {
		if d.GetRoleUrn() == urnGoWorkerBinary {
			return d, nil
		}
	}
	if len(deps) == 1 {
		return deps[0], nil
	}
	return nil, fmt.Errorf("none of the pipeline's %d artifacts is a Go worker binary (role %s): submit the pipeline with its worker binary", len(deps), urnGoWorkerBinary)
}

// workerBinary returns the path of the worker binary to execute: the file
// named by the artifact when it is on this machine and matches the
// pipeline's sha256, otherwise a verified copy fetched from the runner into
// dir.
func (p *Pool) workerBinary(ctx context.Context, w *worker, deps []*pipepb.ArtifactInformation, endpoint, dir string) (string, error) {
	art, err := workerArtifact(deps)
	if err != nil {
		return "", err
	}
	var path, want string
	if art.GetTypeUrn() == urnFileArtifact {
		var fp pipepb.ArtifactFilePayload
		if err := proto.Unmarshal(art.GetTypePayload(), &fp); err != nil {
			return "", fmt.Errorf("decode worker binary artifact: %w", err)
		}
		path, want = fp.GetPath(), fp.GetSha256()
	}

	// The pool runs on the machine that staged the pipeline, so the staged
	// file is usually right here.
	var local error
	if path != "" {
		got, err := sha256File(path)
		switch {
		case err != nil:
			local = err
		case want == "" || got == want:
			p.logger.Debug("using local worker binary", "worker", w.name, "path", path)
			return path, nil
		default:
			local = mismatch(path, want, got)
		}
		p.logger.Debug("local worker binary unusable, fetching it from the runner", "worker", w.name, "path", path, "reason", local)
	}

	if endpoint == "" {
		if local != nil {
			return "", local
		}
		return "", errors.New("the runner gave no artifact endpoint to fetch the worker binary from")
	}
	dst := filepath.Join(dir, "bin", "worker")
	got, err := fetch(ctx, endpoint, w.id, art, dst)
	if err != nil {
		if local != nil {
			return "", fmt.Errorf("%w; fetching it from the runner failed too: %v", local, err)
		}
		return "", fmt.Errorf("fetch worker binary from %s: %w", endpoint, err)
	}
	if want != "" && got != want {
		return "", mismatch(firstNonEmpty(path, "fetched from the runner"), want, got)
	}
	p.logger.Debug("fetched worker binary", "worker", w.name, "path", dst, "sha256", got)
	return dst, nil
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

// localWorker returns the worker binary named by the request's parameters,
// checked against their sha256, or "" when they name none.
func (p *Pool) localWorker(params map[string]string) (string, error) {
	path := params[ParamWorkerBinary]
	if path == "" {
		return "", nil
	}
	want := params[ParamWorkerSHA256]
	if want == "" {
		return "", fmt.Errorf("worker binary %s comes without its sha256 (%s): submit it with both parameters", path, ParamWorkerSHA256)
	}
	got, err := sha256File(path)
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

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetch streams the artifact from the runner's retrieval service into dst
// and returns its sha256.
func fetch(ctx context.Context, endpoint, id string, art *pipepb.ArtifactInformation, dst string) (string, error) {
	conn, err := dial(endpoint)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stream, err := jobpb.NewArtifactRetrievalServiceClient(conn).GetArtifact(withWorkerID(ctx, id), &jobpb.GetArtifactRequest{Artifact: art}, grpc.WaitForReady(true))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	out := io.MultiWriter(f, h)
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if _, err := out.Write(chunk.GetData()); err != nil {
			return "", err
		}
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

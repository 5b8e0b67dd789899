package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
)

// stagedArtifact is an artifact retrieved from the runner into a file.
type stagedArtifact struct {
	info *pipepb.ArtifactInformation
	path string
}

// retrieveAll retrieves the artifacts from the runner's retrieval service
// into dir, each checked against the sha256 its payload declares.
func retrieveAll(ctx context.Context, endpoint, id string, deps []*pipepb.ArtifactInformation, dir string, logger *slog.Logger) ([]stagedArtifact, error) {
	conn, err := dial(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to artifact service %s: %w", endpoint, err)
	}
	defer conn.Close()
	client := jobpb.NewArtifactRetrievalServiceClient(conn)
	ctx = beam.WithWorkerID(ctx, id)

	arts := deps
	resp, err := client.ResolveArtifacts(ctx, &jobpb.ResolveArtifactsRequest{Artifacts: deps}, grpc.WaitForReady(true))
	switch {
	case status.Code(err) == codes.Unimplemented:
		// A runner that cannot resolve artifacts serves them as declared.
	case err != nil:
		return nil, fmt.Errorf("resolve artifacts at %s: %w", endpoint, err)
	default:
		arts = resp.GetReplacements()
	}
	names, err := stagedNames(arts)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	// The root keeps every file inside dir, whatever the names and
	// whatever is already there.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open staging directory: %w", err)
	}
	defer root.Close()
	out := make([]stagedArtifact, len(arts))
	for i, a := range arts {
		got, err := retrieve(ctx, client, a, root, names[i])
		if err != nil {
			_ = root.Remove(names[i])
			return nil, fmt.Errorf("retrieve artifact %s from %s: %w", names[i], endpoint, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(names[i]))
		want, err := beam.DeclaredSHA256(a)
		if err != nil {
			return nil, err
		}
		switch {
		case want == "":
			logger.Debug("staged artifact declares no sha256, not checked", "path", p)
		case got != want:
			_ = root.Remove(names[i])
			return nil, fmt.Errorf("artifact %s retrieved from %s does not match its sha256 %s (it has %s): submit the job again", names[i], endpoint, want, got)
		}
		logger.Debug("retrieved artifact", "path", p, "sha256", got)
		out[i] = stagedArtifact{info: a, path: p}
	}
	return out, nil
}

// stagedNames chooses where under the staging directory each artifact
// goes: the name the runner gives it (staging_to role), else the base name
// of its file or URL. Names leaving the directory are refused: the runner
// may not be trusted with this machine's files.
func stagedNames(arts []*pipepb.ArtifactInformation) ([]string, error) {
	names := make([]string, len(arts))
	seen := map[string]bool{}
	for i, a := range arts {
		name, given, err := stagedName(a)
		if err != nil {
			return nil, err
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return nil, fmt.Errorf("the runner asks to stage an artifact as %q, outside the staging directory: refusing it", name)
		}
		name = path.Clean(name)
		if seen[name] {
			if given {
				return nil, fmt.Errorf("the runner asks to stage two artifacts as %q", name)
			}
			name = fmt.Sprintf("%d-%s", i, name)
		}
		seen[name] = true
		names[i] = name
	}
	return names, nil
}

func stagedName(a *pipepb.ArtifactInformation) (name string, given bool, err error) {
	switch {
	case a.GetRoleUrn() == beam.StagingToRoleURN:
		var role pipepb.ArtifactStagingToRolePayload
		if err := proto.Unmarshal(a.GetRolePayload(), &role); err != nil {
			return "", false, fmt.Errorf("decode staging_to role: %w", err)
		}
		return role.GetStagedName(), true, nil
	case a.GetTypeUrn() == beam.FileArtifactURN:
		f, err := beam.FilePayload(a)
		return path.Base(filepath.ToSlash(f.Path)), false, err
	case a.GetTypeUrn() == beam.URLArtifactURN:
		var u pipepb.ArtifactUrlPayload
		if err := proto.Unmarshal(a.GetTypePayload(), &u); err != nil {
			return "", false, fmt.Errorf("decode url artifact: %w", err)
		}
		return path.Base(u.GetUrl()), false, nil
	}
	return "", false, fmt.Errorf("cannot stage an artifact of type %s with role %s", a.GetTypeUrn(), a.GetRoleUrn())
}

// retrieve streams one artifact into name under root and returns its
// sha256.
func retrieve(ctx context.Context, client jobpb.ArtifactRetrievalServiceClient, a *pipepb.ArtifactInformation, root *os.Root, name string) (string, error) {
	stream, err := client.GetArtifact(ctx, &jobpb.GetArtifactRequest{Artifact: a}, grpc.WaitForReady(true))
	if err != nil {
		return "", err
	}
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return "", err
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := digest.New()
	out := io.MultiWriter(f, h)
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
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
	return h.Hex(), nil
}

// copyExecutable copies src to dst with execute permission: the staging
// directory may be on a volume mounted noexec.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

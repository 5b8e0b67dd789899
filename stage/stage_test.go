package stage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/stage/stagetest"
)

var (
	prism  *stagetest.Prism
	binDir string
)

func TestMain(m *testing.M) {
	os.Exit(stagetest.Main(m, 10*time.Minute, nil, func(s *stagetest.Suite) { prism, binDir = s.Prism, s.Dir }))
}

func needPrism(tb testing.TB) {
	tb.Helper()
	if prism == nil {
		tb.Skip("needs the prism job server; not started in -short mode")
	}
}

// writeFile writes size pseudo-random bytes and returns the file with its
// true digest.
func writeFile(tb testing.TB, dir, name string, size int) stage.File {
	tb.Helper()
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)})
	r.Read(b)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return stage.File{Path: path, SHA256: hex.EncodeToString(sum[:])}
}

func pipelineWith(files ...stage.File) *pipepb.Pipeline {
	env := &pipepb.Environment{Urn: "beam:env:external:v1"}
	for _, f := range files {
		env.Dependencies = append(env.Dependencies, beam.FileArtifact(f, beam.GoWorkerRoleURN))
	}
	return &pipepb.Pipeline{Components: &pipepb.Components{Environments: map[string]*pipepb.Environment{"go": env}}}
}

type prepared struct {
	prepID, token string
	staging       jobpb.ArtifactStagingServiceClient
}

func prepare(tb testing.TB, p *pipepb.Pipeline) prepared {
	tb.Helper()
	resp, err := jobpb.NewJobServiceClient(prism.Conn).Prepare(context.Background(), &jobpb.PrepareJobRequest{Pipeline: p, JobName: tb.Name()})
	if err != nil {
		tb.Fatalf("Prepare: %v", err)
	}
	return prepared{resp.GetPreparationId(), resp.GetStagingSessionToken(), jobpb.NewArtifactStagingServiceClient(prism.Conn)}
}

// readBack fetches the worker artifact of f from prism and returns its
// digest and size.
func readBack(tb testing.TB, f stage.File) (string, int64, error) {
	tb.Helper()
	return stagetest.Fetch(context.Background(), prism.Conn, beam.FileArtifact(f, beam.GoWorkerRoleURN))
}

func TestArtifactsToPrism(t *testing.T) {
	needPrism(t)
	const chunk = stage.MinChunkSize
	tests := []struct {
		name  string
		sizes []int
	}{
		{"empty file", []int{0}},
		{"one byte", []int{1}},
		{"one chunk less a byte", []int{chunk - 1}},
		{"exactly one chunk", []int{chunk}},
		{"one chunk and a byte", []int{chunk + 1}},
		{"several files", []int{3*chunk + 5, 7, 2 * chunk}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []stage.File
			for i, size := range tt.sizes {
				files = append(files, writeFile(t, dir, fmt.Sprintf("f%d", i), size))
			}
			p := pipelineWith(files...)
			set, err := stage.PipelineFiles(p)
			if err != nil {
				t.Fatal(err)
			}
			prep := prepare(t, p)
			var chunks []stage.Progress
			err = stage.Artifacts(context.Background(), prep.staging, prep.token, set, stage.Options{
				PreparationID: prep.prepID,
				ChunkSize:     chunk,
				Progress:      func(p stage.Progress) { chunks = append(chunks, p) },
			})
			if err != nil {
				t.Fatalf("Artifacts: %v", err)
			}
			for i, f := range files {
				sum, n, err := readBack(t, f)
				if err != nil {
					t.Fatalf("reading back %s: %v", f.Path, err)
				}
				if sum != f.SHA256 || n != int64(tt.sizes[i]) {
					t.Errorf("prism holds %d bytes sha256 %s for %s; want %d bytes %s", n, sum, f.Path, tt.sizes[i], f.SHA256)
				}
			}
			for _, c := range chunks {
				if c.Sent > c.Size {
					t.Errorf("progress %+v: sent more than the file size", c)
				}
			}
		})
	}
}

func TestArtifactsMismatchAborts(t *testing.T) {
	needPrism(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "worker", 3*stage.MinChunkSize)
	p := pipelineWith(f)
	set, err := stage.PipelineFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	// The binary is rebuilt after capture.
	writeFile(t, dir, "worker", 3*stage.MinChunkSize+1)
	prep := prepare(t, p)
	err = stage.Artifacts(context.Background(), prep.staging, prep.token, set, stage.Options{ChunkSize: stage.MinChunkSize})
	var mm *stage.MismatchError
	if !errors.As(err, &mm) || mm.Path != f.Path {
		t.Fatalf("Artifacts = %v; want a MismatchError naming %s", err, f.Path)
	}
	if !strings.Contains(err.Error(), f.Path) {
		t.Errorf("error %q does not name the file", err)
	}
	if _, _, err := readBack(t, f); err == nil {
		t.Error("prism serves the artifact although staging was aborted")
	}
	if err := set.Verify(context.Background(), digest.NewCache()); !errors.As(err, &mm) {
		t.Errorf("Verify = %v; want a MismatchError", err)
	}
}

// TestArtifactsAfterVerify covers staging a file that Verify hashed earlier
// in the run: unchanged, it is sent without hashing it again; changed in
// any way that shows in its size, modification or change time or identity,
// it is hashed and the change caught.
func TestArtifactsAfterVerify(t *testing.T) {
	needPrism(t)
	const size = 5*stage.MinChunkSize + 3
	old := time.Now().Add(-time.Hour)
	tests := []struct {
		name string
		// age sets the file's modification time before Verify; zero leaves
		// it just written.
		age time.Time
		// change runs between Verify and staging.
		change   func(t *testing.T, path string)
		mismatch bool
	}{
		{"unchanged", old, func(*testing.T, string) {}, false},
		// The change time moves with any write and cannot be set back.
		{"rewritten in place, mtime restored", old, func(t *testing.T, path string) {
			flipByte(t, path)
			setMtime(t, path, old)
		}, true},
		{"rewritten, same size, new mtime", old, func(t *testing.T, path string) {
			flipByte(t, path)
			setMtime(t, path, old.Add(time.Minute))
		}, true},
		{"replaced by a new file, same size and mtime", old, func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff
			tmp := path + ".new"
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				t.Fatal(err)
			}
			setMtime(t, tmp, old)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}, true},
		// A file modified moments before it was hashed may be written again
		// without its mtime moving, so its digest is not trusted later.
		{"fresh file rewritten keeping its mtime", time.Time{}, func(t *testing.T, path string) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			flipByte(t, path)
			setMtime(t, path, st.ModTime())
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "worker", size)
			if !tt.age.IsZero() {
				setMtime(t, f.Path, tt.age)
			}
			p := pipelineWith(f)
			set, err := stage.PipelineFiles(p)
			if err != nil {
				t.Fatal(err)
			}
			digests := digest.NewCache()
			if err := set.Verify(context.Background(), digests); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			tt.change(t, f.Path)
			prep := prepare(t, p)
			err = stage.Artifacts(context.Background(), prep.staging, prep.token, set, stage.Options{PreparationID: prep.prepID, ChunkSize: stage.MinChunkSize, Digests: digests})
			var mm *stage.MismatchError
			if tt.mismatch {
				if !errors.As(err, &mm) {
					t.Fatalf("Artifacts = %v; want a MismatchError", err)
				}
				if _, _, err := readBack(t, f); err == nil {
					t.Error("prism serves the artifact although staging was aborted")
				}
				return
			}
			if err != nil {
				t.Fatalf("Artifacts: %v", err)
			}
			sum, n, err := readBack(t, f)
			if err != nil || sum != f.SHA256 || n != size {
				t.Errorf("prism holds %d bytes sha256 %s (%v); want %d bytes %s", n, sum, err, size, f.SHA256)
			}
		})
	}
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	if _, err := fh.ReadAt(b, 7); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := fh.WriteAt(b, 7); err != nil {
		t.Fatal(err)
	}
}

func setMtime(t *testing.T, path string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineFiles(t *testing.T) {
	a := stage.File{Path: "/w/a", SHA256: "aa"}
	tests := []struct {
		name    string
		envs    map[string][]*pipepb.ArtifactInformation
		want    stage.Files
		wantErr string
	}{
		{
			name: "file artifacts of all environments",
			envs: map[string][]*pipepb.ArtifactInformation{
				"go":    {beam.FileArtifact(a, beam.GoWorkerRoleURN)},
				"other": {beam.FileArtifact(stage.File{Path: "/w/b"}, ""), {TypeUrn: "beam:artifact:type:url:v1"}},
			},
			want: stage.Files{"/w/a": a, "/w/b": {Path: "/w/b"}},
		},
		{
			name: "same file declared twice, once without digest",
			envs: map[string][]*pipepb.ArtifactInformation{
				"a": {beam.FileArtifact(a, "")},
				"b": {beam.FileArtifact(stage.File{Path: "/w/a"}, "")},
			},
			want: stage.Files{"/w/a": a},
		},
		{
			name: "conflicting digests",
			envs: map[string][]*pipepb.ArtifactInformation{
				"a": {beam.FileArtifact(a, "")},
				"b": {beam.FileArtifact(stage.File{Path: "/w/a", SHA256: "bb"}, "")},
			},
			wantErr: "two sha256 digests",
		},
		{
			name:    "file artifact without path",
			envs:    map[string][]*pipepb.ArtifactInformation{"go": {beam.FileArtifact(stage.File{}, beam.GoWorkerRoleURN)}},
			wantErr: "without a path",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pipepb.Pipeline{Components: &pipepb.Components{Environments: map[string]*pipepb.Environment{}}}
			for id, deps := range tt.envs {
				p.Components.Environments[id] = &pipepb.Environment{Dependencies: deps}
			}
			got, err := stage.PipelineFiles(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("PipelineFiles error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("PipelineFiles = %v; want %v", got, tt.want)
			}
		})
	}
}

// fakeStaging is a job server's staging service driven by a script, for the
// faults a real job server does not produce on demand.
type fakeStaging struct {
	jobpb.UnimplementedArtifactStagingServiceServer
	script func(stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error

	mu       sync.Mutex
	workerID []string
	first    *jobpb.ArtifactResponseWrapper
}

func (f *fakeStaging) ReverseArtifactRetrievalService(stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.workerID = md.Get("worker_id")
	f.first = first
	f.mu.Unlock()
	return f.script(stream)
}

func startFake(t *testing.T, f *fakeStaging) jobpb.ArtifactStagingServiceClient {
	t.Helper()
	conn := grpctest.Serve(t, "bufnet", func(srv *grpc.Server) { jobpb.RegisterArtifactStagingServiceServer(srv, f) })
	return jobpb.NewArtifactStagingServiceClient(conn)
}

func getArtifact(f stage.File) *jobpb.ArtifactRequestWrapper {
	return &jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_GetArtifact{
		GetArtifact: &jobpb.GetArtifactRequest{Artifact: beam.FileArtifact(f, beam.GoWorkerRoleURN)},
	}}
}

// receive collects one artifact's chunks up to is_last.
func receive(stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) (data []byte, sizes []int, err error) {
	for {
		in, err := stream.Recv()
		if err != nil {
			return data, sizes, err
		}
		if in.GetIsLast() {
			return data, sizes, nil
		}
		d := in.GetGetArtifactResponse().GetData()
		data = append(data, d...)
		sizes = append(sizes, len(d))
	}
}

func TestArtifactsProtocol(t *testing.T) {
	dir := t.TempDir()
	worker := writeFile(t, dir, "worker", 2*stage.MinChunkSize+10)
	secret := writeFile(t, dir, "secret", 10)
	files := stage.Files{worker.Path: worker}

	tests := []struct {
		name    string
		script  func(t *testing.T, stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error
		wantErr string
	}{
		{
			name: "resolve then get, in chunks",
			script: func(t *testing.T, stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
				arts := []*pipepb.ArtifactInformation{beam.FileArtifact(worker, beam.GoWorkerRoleURN)}
				stream.Send(&jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_ResolveArtifact{
					ResolveArtifact: &jobpb.ResolveArtifactsRequest{Artifacts: arts},
				}})
				in, err := stream.Recv()
				if err != nil {
					return err
				}
				if got := in.GetResolveArtifactResponse().GetReplacements(); len(got) != 1 || got[0].GetTypeUrn() != beam.FileArtifactURN {
					t.Errorf("replacements = %v; want the file artifact", got)
				}
				stream.Send(getArtifact(worker))
				data, sizes, err := receive(stream)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(data)
				if hex.EncodeToString(sum[:]) != worker.SHA256 {
					t.Errorf("received %d bytes with the wrong digest", len(data))
				}
				for _, s := range sizes {
					if s > stage.MinChunkSize {
						t.Errorf("chunk of %d bytes; want at most %d", s, stage.MinChunkSize)
					}
				}
				return nil
			},
		},
		{
			name: "undeclared file is refused",
			script: func(t *testing.T, stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
				stream.Send(getArtifact(secret))
				data, _, err := receive(stream)
				if len(data) > 0 {
					t.Errorf("sent %d bytes of an undeclared file", len(data))
				}
				return err
			},
			wantErr: "does not declare",
		},
		{
			name: "non-file artifact is refused",
			script: func(t *testing.T, stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
				stream.Send(&jobpb.ArtifactRequestWrapper{Request: &jobpb.ArtifactRequestWrapper_GetArtifact{
					GetArtifact: &jobpb.GetArtifactRequest{Artifact: &pipepb.ArtifactInformation{TypeUrn: "beam:artifact:type:url:v1"}},
				}})
				_, _, err := receive(stream)
				return err
			},
			wantErr: "only beam:artifact:type:file:v1",
		},
		{
			name: "server fails mid-file",
			script: func(t *testing.T, stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
				stream.Send(getArtifact(worker))
				if _, err := stream.Recv(); err != nil {
					return err
				}
				return errors.New("disk full on the job server")
			},
			wantErr: "disk full on the job server",
		},
		{
			name: "nothing requested",
			script: func(t *testing.T, stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeStaging{}
			fake.script = func(s jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceServer) error {
				return tt.script(t, s)
			}
			client := startFake(t, fake)
			err := stage.Artifacts(context.Background(), client, "token-1", files, stage.Options{PreparationID: "prep-1", ChunkSize: stage.MinChunkSize})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Artifacts: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Artifacts error = %v; want %q", err, tt.wantErr)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if fake.first.GetStagingToken() != "token-1" {
				t.Errorf("first message carries token %q; want token-1", fake.first.GetStagingToken())
			}
			if len(fake.workerID) != 1 || fake.workerID[0] != "prep-1" {
				t.Errorf("worker_id metadata = %v; want [prep-1]", fake.workerID)
			}
		})
	}
}

func TestArtifactsOptions(t *testing.T) {
	for _, size := range []int{1, stage.MinChunkSize - 1, stage.MaxChunkSize + 1} {
		err := stage.Artifacts(context.Background(), nil, "t", stage.Files{}, stage.Options{ChunkSize: size})
		if err == nil || !strings.Contains(err.Error(), "chunk size") {
			t.Errorf("ChunkSize %d: error = %v; want a chunk size error", size, err)
		}
	}
}

var (
	workerOnce sync.Once
	workerBin  string
	workerErr  error
)

// BenchmarkStage stages the real wordcount worker binary to prism, per
// chunk size.
func BenchmarkStage(b *testing.B) {
	needPrism(b)
	workerOnce.Do(func() {
		workerBin, workerErr = stagetest.Build(context.Background(), binDir, "wc", "github.com/beamctl/beamctl/examples/wordcount")
	})
	if workerErr != nil {
		b.Fatal(workerErr)
	}
	ds, err := digest.File(context.Background(), workerBin)
	sum, size := ds.SHA256, ds.Size
	if err != nil {
		b.Fatal(err)
	}
	f := stage.File{Path: workerBin, SHA256: sum}
	p := pipelineWith(f)
	set, err := stage.PipelineFiles(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, chunk := range []int{1 << 20, stage.DefaultChunkSize, stage.MaxChunkSize} {
		b.Run(fmt.Sprintf("chunk=%dKiB", chunk>>10), func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				prep := prepare(b, p)
				b.StartTimer()
				start := time.Now()
				err := stage.Artifacts(context.Background(), prep.staging, prep.token, set, stage.Options{PreparationID: prep.prepID, ChunkSize: chunk})
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(size)*float64(b.N)/1e6/elapsed.Seconds(), "MB/s")
		})
	}
}

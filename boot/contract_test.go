package boot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/loopback"
)

// fakeRunner serves the provision and artifact services a worker's boot
// uses, with whatever artifacts a test wants, to inject faults a real runner
// does not produce.
type fakeRunner struct {
	fnpb.UnimplementedProvisionServiceServer
	jobpb.UnimplementedArtifactRetrievalServiceServer

	deps     []*pipepb.ArtifactInformation
	artifact []byte // served for any artifact; nil: not found
	// resolve, if set, answers ResolveArtifacts; otherwise it is
	// unimplemented, as in runners that serve artifacts as declared.
	resolve func([]*pipepb.ArtifactInformation) []*pipepb.ArtifactInformation
	// block makes GetProvisionInfo wait for the caller to give up.
	block bool

	mu sync.Mutex
	// fetched are the paths of the artifacts served, in order.
	fetched []string
}

// served returns the paths of the artifacts retrieved so far.
func (f *fakeRunner) served() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fetched)
}

func (f *fakeRunner) ResolveArtifacts(_ context.Context, req *jobpb.ResolveArtifactsRequest) (*jobpb.ResolveArtifactsResponse, error) {
	if f.resolve == nil {
		return nil, status.Error(codes.Unimplemented, "no resolution")
	}
	return &jobpb.ResolveArtifactsResponse{Replacements: f.resolve(req.GetArtifacts())}, nil
}

func (f *fakeRunner) GetProvisionInfo(ctx context.Context, _ *fnpb.GetProvisionInfoRequest) (*fnpb.GetProvisionInfoResponse, error) {
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("worker_id")) != 1 {
		return nil, status.Error(codes.InvalidArgument, "no worker_id in metadata")
	}
	opts, err := structpb.NewStruct(map[string]any{
		"beam:option:go_options:v1": map[string]any{"options": map[string]any{"job_name": "contract"}},
	})
	if err != nil {
		return nil, err
	}
	return &fnpb.GetProvisionInfoResponse{Info: &fnpb.ProvisionInfo{
		PipelineOptions:    opts,
		Dependencies:       f.deps,
		RunnerCapabilities: []string{"beam:cap:a", "beam:cap:b"},
		StatusEndpoint:     &pipepb.ApiServiceDescriptor{Url: "status:1"},
	}}, nil
}

func (f *fakeRunner) GetArtifact(req *jobpb.GetArtifactRequest, stream jobpb.ArtifactRetrievalService_GetArtifactServer) error {
	if a, err := beam.FilePayload(req.GetArtifact()); err == nil {
		f.mu.Lock()
		f.fetched = append(f.fetched, a.Path)
		f.mu.Unlock()
	}
	if f.artifact == nil {
		return status.Error(codes.NotFound, "no such artifact")
	}
	for b := f.artifact; len(b) > 0; {
		n := min(len(b), 7)
		if err := stream.Send(&jobpb.GetArtifactResponse{Data: b[:n]}); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func serveFake(t *testing.T, f *fakeRunner) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	fnpb.RegisterProvisionServiceServer(s, f)
	jobpb.RegisterArtifactRetrievalServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func fileArtifact(t *testing.T, path string, content []byte, role string) *pipepb.ArtifactInformation {
	t.Helper()
	a, err := fileArtifactInfo(path, content, role)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fileArtifactInfo(path string, content []byte, role string) (*pipepb.ArtifactInformation, error) {
	payload, err := proto.Marshal(&pipepb.ArtifactFilePayload{Path: path, Sha256: sha256Hex(content)})
	if err != nil {
		return nil, err
	}
	return &pipepb.ArtifactInformation{TypeUrn: beam.FileArtifactURN, TypePayload: payload, RoleUrn: role}, nil
}

func TestContract(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	const id = "job-001[contract]_go"
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	// The worker echoes what the contract gives it, then waits to be stopped.
	good := []byte("#!/bin/sh\ntouch " + marker + "\necho \"argv $0 $*\"\necho \"options $(cat \"$PIPELINE_OPTIONS_FILE\")\"\n" +
		"echo \"caps $RUNNER_CAPABILITIES status $STATUS_ENDPOINT\"\nexec sleep 300\n")
	other := []byte("#!/bin/sh\ntouch " + marker + "\nexit 0\n")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodPath := write("good", good)
	otherPath := write("other", other)
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name     string
		deps     []*pipepb.ArtifactInformation
		params   map[string]string
		artifact []byte
		wantBin  string // the binary the worker runs; empty: it must not start
		wantErr  string
	}{
		// A local binary runs from the file that was checked, open before
		// the check: nothing swapped in at its path afterwards can run.
		{
			name:    "local binary",
			deps:    []*pipepb.ArtifactInformation{fileArtifact(t, goodPath, good, beam.GoWorkerRoleURN)},
			wantBin: "/proc/self/fd/3",
		},
		{
			name:    "only artifact, no role",
			deps:    []*pipepb.ArtifactInformation{fileArtifact(t, goodPath, good, "")},
			wantBin: "/proc/self/fd/3",
		},
		{
			name:     "local file changed since staging, staged copy fetched",
			deps:     []*pipepb.ArtifactInformation{fileArtifact(t, otherPath, good, beam.GoWorkerRoleURN)},
			artifact: good,
			wantBin:  "staged/other",
		},
		{
			name:     "missing locally, fetched",
			deps:     []*pipepb.ArtifactInformation{fileArtifact(t, missing, good, beam.GoWorkerRoleURN)},
			artifact: good,
			wantBin:  "staged/missing",
		},
		{
			name:     "sha256 mismatch everywhere",
			deps:     []*pipepb.ArtifactInformation{fileArtifact(t, otherPath, good, beam.GoWorkerRoleURN)},
			artifact: other,
			wantErr:  "does not match its sha256",
		},
		{
			name:    "missing and not retrievable",
			deps:    []*pipepb.ArtifactInformation{fileArtifact(t, missing, good, beam.GoWorkerRoleURN)},
			wantErr: "no such artifact",
		},
		{
			name: "no worker among several artifacts",
			deps: []*pipepb.ArtifactInformation{
				fileArtifact(t, goodPath, good, ""), fileArtifact(t, otherPath, other, ""),
			},
			wantErr: "none of the pipeline's 2 artifacts is a Go worker binary",
		},
		{
			name:    "no artifacts",
			wantErr: "the pipeline has no artifacts, so no Go worker binary",
		},
		{
			name:    "worker in an image, pool without one",
			params:  map[string]string{boot.ParamWorkerSHA256: strings.Repeat("ab", 32)},
			wantErr: "comes in its image, and this worker pool has no worker baked in: run the worker image as the pool",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(marker)
			runner := serveFake(t, &fakeRunner{deps: tt.deps, artifact: tt.artifact})
			out, logs := newOutputLog(), newOutputLog()
			workDir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := boot.StartPool(ctx, boot.PoolOptions{Output: out, Logger: debugLogger(logs), WorkDir: workDir, StopGrace: 10 * time.Second, LocalBinary: loopback.LocalFiles(digest.NewCache(), debugLogger(logs))})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()

			conn, err := grpc.NewClient(p.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := fnpb.NewBeamFnExternalWorkerPoolClient(conn)
			ep := &pipepb.ApiServiceDescriptor{Url: runner}
			resp, err := client.StartWorker(ctx, &fnpb.StartWorkerRequest{
				WorkerId:          id,
				ControlEndpoint:   &pipepb.ApiServiceDescriptor{Url: "control:1"},
				LoggingEndpoint:   &pipepb.ApiServiceDescriptor{Url: "logging:1"},
				ArtifactEndpoint:  ep,
				ProvisionEndpoint: ep,
				Params:            tt.params,
			})
			if err != nil || resp.GetError() != "" {
				t.Fatalf("StartWorker = %v, %v; want success whatever happens", resp, err)
			}

			if tt.wantErr != "" {
				failure := nextFailure(t, p, 30*time.Second)
				if !strings.Contains(failure.Error(), tt.wantErr) {
					t.Errorf("failure %q does not contain %q", failure, tt.wantErr)
				}
				if failure.ID != id || failure.Worker != "worker-1" {
					t.Errorf("failure names %q (%q), want worker-1 (%q)", failure.Worker, failure.ID, id)
				}
				if err := p.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the worker ran: %v", err)
				}
				return
			}

			out.waitFor(t, "status status:1\n", 30*time.Second)
			text := out.String()
			for _, want := range []string{
				"[worker-1] argv ",
				tt.wantBin + " --worker=true --id=" + id + " --logging_endpoint=logging:1 --control_endpoint=control:1 --semi_persist_dir=" + filepath.Join(workDir, "worker-1") + "\n",
				`[worker-1] options {"beam:option:go_options:v1":{"options":{"job_name":"contract"}}}` + "\n",
				"[worker-1] caps beam:cap:a beam:cap:b status status:1\n",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("worker output lacks %q:\n%s", want, text)
				}
			}

			// Stopping is not a failure, and reaps the worker before answering.
			if _, err := client.StopWorker(ctx, &fnpb.StopWorkerRequest{WorkerId: id}); err != nil {
				t.Fatalf("StopWorker: %v", err)
			}
			assertNoWorkers(t, workDir)
			assertNoWorkers(t, dir)
			noFailure(t, p)
			if _, err := os.Stat(filepath.Join(workDir, "worker-1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the worker's directory outlived it: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestCloseStopsWorkers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	dir := t.TempDir()
	sleep, setsid := lookPath(t, "sleep"), lookPath(t, "setsid")
	// Named after dir, so a straggler shows in the process table.
	sleeper := filepath.Join(dir, "sleeper")
	if err := os.Symlink(sleep, sleeper); err != nil {
		t.Fatal(err)
	}
	// This worker ignores SIGTERM, so only the kill after the grace period
	// ends it; one child sleeps in the same process group, another in a
	// session of its own.
	script := []byte("#!/bin/sh\ntrap '' TERM\n" + sleeper + " 300 &\n" + setsid + " " + sleeper + " 301 &\necho ready\nwait\n")
	bin := filepath.Join(dir, "stubborn")
	if err := os.WriteFile(bin, script, 0o755); err != nil {
		t.Fatal(err)
	}
	runner := serveFake(t, &fakeRunner{deps: []*pipepb.ArtifactInformation{fileArtifact(t, bin, script, beam.GoWorkerRoleURN)}})
	out := newOutputLog()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := boot.StartPool(ctx, boot.PoolOptions{Output: out, StopGrace: 200 * time.Millisecond, LocalBinary: loopback.LocalFiles(digest.NewCache(), nil)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ep := &pipepb.ApiServiceDescriptor{Url: runner}
	for _, id := range []string{"a", "b"} {
		if _, err := fnpb.NewBeamFnExternalWorkerPoolClient(conn).StartWorker(ctx, &fnpb.StartWorkerRequest{
			WorkerId: id, ControlEndpoint: ep, LoggingEndpoint: ep, ProvisionEndpoint: ep, ArtifactEndpoint: ep,
		}); err != nil {
			t.Fatal(err)
		}
	}
	out.waitFor(t, "[worker-1] ready", 30*time.Second)
	out.waitFor(t, "[worker-2] ready", 30*time.Second)

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertNoWorkers(t, dir)
	noFailure(t, p)

	// A request that raced with Close is refused on Failures, not by an
	// error answer.
	resp, err := p.StartWorker(ctx, &fnpb.StartWorkerRequest{WorkerId: "c"})
	if err != nil || resp.GetError() != "" {
		t.Errorf("StartWorker on a closed pool = %v, %v; want success", resp, err)
	}
	if f := nextFailure(t, p, time.Second); !strings.Contains(f.Error(), "closed") {
		t.Errorf("failure %q does not say the pool is closed", f)
	}
}

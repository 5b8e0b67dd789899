package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/beamctl/beamctl/stage/stagetest"
)

// submitWordcount submits the built wordcount to prism with beamctl
// submit in its own process (the process environment executes beamctl
// itself), follows it to DONE and checks what it wrote.
func submitWordcount(t *testing.T, prism *stagetest.Prism, args ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "counts.txt")
	args = append(append([]string{"submit", builtDist(t), "--endpoint", prism.Endpoint}, args...),
		"--", "--input="+abs(t, wordcountInput), "--output="+out)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stderr, err := exec.CommandContext(ctx, beamctlBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("beamctl %v: %v\n%s\nprism:\n%s", args, err, stderr, prism.Output())
	}
	if got, want := readSorted(t, out), countWords(t, wordcountInput); !slices.Equal(got, want) {
		t.Errorf("counts differ:\n got %v\nwant %v", got, want)
	}
}

// TestBootProcessEnvironment has prism start the workers itself by
// executing beamctl, as its PROCESS environment does: the path alone,
// with --id='ID' and --provision_endpoint.
func TestBootProcessEnvironment(t *testing.T) {
	t.Parallel()
	t.Run("beamctl", func(t *testing.T) {
		submitWordcount(t, startPrism(t), "--environment", "process")
	})
	t.Run("beamctl-boot", func(t *testing.T) {
		submitWordcount(t, startPrism(t), "--environment", "process", "--environment-config", bootBinary(t))
	})
}

// provisionRecorder is a provision service that remembers which worker
// asked, and provisions nothing to run.
type provisionRecorder struct {
	fnpb.UnimplementedProvisionServiceServer
	mu  sync.Mutex
	ids []string
}

func (p *provisionRecorder) GetProvisionInfo(ctx context.Context, _ *fnpb.GetProvisionInfoRequest) (*fnpb.GetProvisionInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	p.mu.Lock()
	p.ids = append(p.ids, md.Get("worker_id")...)
	p.mu.Unlock()
	ep := &pipepb.ApiServiceDescriptor{Url: "127.0.0.1:1"}
	return &fnpb.GetProvisionInfoResponse{Info: &fnpb.ProvisionInfo{ControlEndpoint: ep, LoggingEndpoint: ep, ArtifactEndpoint: ep}}, nil
}

// serveGRPC serves register's services on a loopback port for the test.
func serveGRPC(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func TestBootFlags(t *testing.T) {
	t.Parallel()
	rec := &provisionRecorder{}
	addr := serveGRPC(t, func(s *grpc.Server) { fnpb.RegisterProvisionServiceServer(s, rec) })
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
		wantID   string // the worker id the provision service saw
	}{
		{name: "no flags", args: nil, wantCode: exitUsage, wantErr: "boot needs --id"},
		{name: "no provision endpoint", args: []string{"--id=w1"}, wantCode: exitUsage, wantErr: "boot needs --provision_endpoint"},
		{name: "address without worker pool", args: []string{"--id=w1", "--provision_endpoint=" + addr, "--address=:0"}, wantCode: exitUsage, wantErr: "use it with --worker_pool"},
		{
			// The provision info has no artifacts, so the boot stops there.
			name:     "quoted values, as prism passes them",
			args:     []string{"--id='w-quoted'", "--provision_endpoint='" + addr + "'", "--semi_persist_dir='" + t.TempDir() + "'"},
			wantCode: exitFailure,
			wantErr:  "boot worker w-quoted: the pipeline has no artifacts",
			wantID:   "w-quoted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := beamctl(t, append([]string{"boot"}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tt.wantCode, tt.wantErr)
			}
			// beamctl-boot is the same command.
			var stderr bytes.Buffer
			cmd := exec.Command(bootBinary(t), tt.args...)
			cmd.Stderr = &stderr
			code := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				code = ee.ExitCode()
			}
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("beamctl-boot: exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one:\n%s", n+1, r.stderr)
			}
			if tt.wantID != "" {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if !slices.Contains(rec.ids, tt.wantID) {
					t.Errorf("the provision service saw worker ids %q, want %q", rec.ids, tt.wantID)
				}
			}
		})
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/internal/grpctest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// poolProcess is a beamctl worker pool running as a process of its own.
type poolProcess struct {
	cmd     *exec.Cmd
	tmp     string // the pool's TMPDIR, where its workers' files go
	mu      sync.Mutex
	stderr  bytes.Buffer
	exited  chan struct{}
	waitErr error
	grew    chan struct{} // closed when output is added
}

// notify wakes waitFor callers: the output grew.
func (p *poolProcess) notify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.grew != nil {
		close(p.grew)
		p.grew = nil
	}
}

// waitFor reports whether the pool's output comes to contain s within d.
func (p *poolProcess) waitFor(s string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		p.mu.Lock()
		if strings.Contains(p.stderr.String(), s) {
			p.mu.Unlock()
			return true
		}
		if p.grew == nil {
			p.grew = make(chan struct{})
		}
		grew := p.grew
		p.mu.Unlock()
		select {
		case <-grew:
		case <-p.exited:
			return strings.Contains(p.output(), s)
		case <-deadline:
			return false
		}
	}
}

func (p *poolProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startPoolProcess starts beamctl with args on a free loopback port and
// returns once it says it listens.
func startPoolProcess(t *testing.T, bin string, args ...string) (*poolProcess, string) {
	t.Helper()
	return startPoolCommand(t, nil, bin, args...)
}

// startPoolCommand is startPoolProcess with env as the command's whole
// environment; nil is this process's, with a TMPDIR of the pool's own.
func startPoolCommand(t *testing.T, env []string, bin string, args ...string) (*poolProcess, string) {
	t.Helper()
	addr := grpctest.FreeAddr(t)
	p := &poolProcess{tmp: t.TempDir(), exited: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	p.cmd = exec.CommandContext(ctx, bin, append(args, "--address", addr)...)
	p.cmd.Env = env
	if env == nil {
		p.cmd.Env = append(os.Environ(), "TMPDIR="+p.tmp)
	}
	stderr := startStderr(t, p.cmd)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "worker pool listening on ") {
				once.Do(func() { close(listening) })
			}
			p.notify()
		}
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.exited
		if t.Failed() {
			t.Logf("pool output:\n%s", p.output())
		}
	})
	select {
	case <-listening:
	case <-p.exited:
		t.Fatalf("the pool exited: %v\n%s", p.waitErr, p.output())
	case <-time.After(time.Minute):
		t.Fatalf("the pool did not start listening:\n%s", p.output())
	}
	return p, addr
}

// stop sends sig and expects the pool to exit 0, leaving no worker.
func (p *poolProcess) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatalf("the pool did not exit on %v", sig)
	}
	if p.waitErr != nil {
		t.Errorf("the pool exited with %v after %v, want 0", p.waitErr, sig)
	}
	assertNothingRuns(t, p.tmp)
}

// assertNothingRuns fails if any process runs something under dir.
func assertNothingRuns(t *testing.T, dir string) {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if cmdline, err := os.ReadFile(p + "/cmdline"); err == nil && bytes.Contains(cmdline, []byte(dir)) {
			t.Errorf("process %s still runs %q", filepath.Base(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}

// TestWorkerPoolExternalEnvironment runs wordcount on prism with its
// workers in a standalone pool, which fetches the worker binary from prism.
func TestWorkerPoolExternalEnvironment(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		bin  func(*testing.T) string
		args []string
		sig  os.Signal
	}{
		{name: "worker-pool", bin: beamctlBinary, args: []string{"worker-pool"}, sig: syscall.SIGTERM},
		{name: "boot --worker_pool", bin: beamctlBinary, args: []string{"boot", "--worker_pool"}, sig: os.Interrupt},
		{name: "beamctl-boot --worker_pool", bin: bootBinary, args: []string{"--worker_pool"}, sig: syscall.SIGTERM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prism := startPrism(t)
			pool, addr := startPoolProcess(t, tt.bin(t), tt.args...)
			submitWordcount(t, prism, "--environment", "external", "--environment-config", addr)
			pool.stop(t, tt.sig)
			if !strings.Contains(pool.output(), "worker pool listening on "+addr) {
				t.Errorf("the pool did not say where it listens:\n%s", pool.output())
			}
		})
	}
}

// blockingProvision never answers, so workers stay in their boot.
type blockingProvision struct {
	fnpb.UnimplementedProvisionServiceServer
}

func (blockingProvision) GetProvisionInfo(ctx context.Context, _ *fnpb.GetProvisionInfoRequest) (*fnpb.GetProvisionInfoResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestWorkerPoolRefuses checks what a standalone pool answers a runner
// when it cannot take a worker: an error in the response, nothing worse.
func TestWorkerPoolRefuses(t *testing.T) {
	t.Parallel()
	runner := serveGRPC(t, func(s *grpc.Server) { fnpb.RegisterProvisionServiceServer(s, blockingProvision{}) })
	ep := &pipepb.ApiServiceDescriptor{Url: runner}
	full := func(id string) *fnpb.StartWorkerRequest {
		return &fnpb.StartWorkerRequest{WorkerId: id, ProvisionEndpoint: ep, ArtifactEndpoint: ep, ControlEndpoint: ep, LoggingEndpoint: ep}
	}
	type call struct {
		req     *fnpb.StartWorkerRequest
		wantErr string // "" for success
	}
	for _, tt := range []struct {
		name  string
		bin   func(*testing.T) string
		args  []string
		calls []call
	}{
		{
			name: "max workers",
			bin:  beamctlBinary,
			args: []string{"worker-pool", "--max-workers", "1"},
			calls: []call{
				{req: full("a")},
				{req: full("b"), wantErr: "the worker pool already runs its maximum of 1 workers"},
				{req: full("a"), wantErr: "already running"},
			},
		},
		{
			name: "no endpoints",
			bin:  beamctlBinary,
			args: []string{"boot", "--worker_pool"},
			calls: []call{
				{req: &fnpb.StartWorkerRequest{WorkerId: "x"}, wantErr: "no provision endpoint"},
				{req: full("y")},
			},
		},
		{
			name: "no endpoints, beamctl-boot",
			bin:  bootBinary,
			args: []string{"--worker_pool"},
			calls: []call{
				{req: &fnpb.StartWorkerRequest{WorkerId: "x"}, wantErr: "no provision endpoint"},
				{req: full("y")},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pool, addr := startPoolProcess(t, tt.bin(t), tt.args...)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := fnpb.NewBeamFnExternalWorkerPoolClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i, c := range tt.calls {
				resp, err := client.StartWorker(ctx, c.req)
				if err != nil {
					t.Fatalf("call %d: StartWorker: %v", i, err)
				}
				if got := resp.GetError(); (c.wantErr == "") != (got == "") || !strings.Contains(got, c.wantErr) {
					t.Errorf("call %d: StartWorker(%s) answered %q, want %q", i, c.req.GetWorkerId(), got, c.wantErr)
				}
			}
			// Workers still booting are stopped too.
			pool.stop(t, syscall.SIGTERM)
		})
	}
}

func TestWorkerPoolAddressInUse(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	addr := lis.Addr().String()
	for _, args := range [][]string{
		{"worker-pool", "--address", addr},
		{"boot", "--worker_pool", "--address", addr},
	} {
		r := beamctl(t, args...)
		want := "beamctl: worker pool address " + addr + " is in use: bind: address already in use; choose another with --address\n"
		if r.code != exitUsage || r.stderr != want {
			t.Errorf("%q: exit %d, stderr %q; want exit %d, %q", args, r.code, r.stderr, exitUsage, want)
		}
	}
	if r := beamctl(t, "worker-pool", "--max-workers", "-1"); r.code != exitUsage || !strings.Contains(r.stderr, "--max-workers -1 is negative") {
		t.Errorf("negative --max-workers: exit %d, %q", r.code, r.stderr)
	}
}

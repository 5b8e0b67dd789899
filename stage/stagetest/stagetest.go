// Package stagetest runs real Beam components for tests of staging and
// submission: the upstream prism job server as a child process, and go build
// for the binaries the tests stage and run.
package stagetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/beamctl/beamctl/internal/syncbuf"
)

// PrismPackage is the import path of the upstream prism job server command.
const PrismPackage = "github.com/apache/beam/sdks/v2/go/cmd/prism"

// Build runs go build for pkg into dir/name with CGO_ENABLED=0 and -trimpath
// (the flags the Go build cache is warm for), plus extra environment such as
// GOOS and GOARCH.
func Build(ctx context.Context, dir, name, pkg string, env ...string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// Prism is a prism job server process listening on 127.0.0.1.
type Prism struct {
	// Endpoint is the job service address, "127.0.0.1:PORT".
	Endpoint string
	// Conn is a client connection to Endpoint.
	Conn *grpc.ClientConn

	cmd    *exec.Cmd
	stop   context.CancelFunc
	out    *syncbuf.Buffer
	exited chan struct{}
}

// StartPrism starts the prism binary on a free port and returns once its job
// service answers. env entries (KEY=VALUE) are added to its environment, and
// so to the workers it starts. Close stops it.
func StartPrism(ctx context.Context, bin string, env ...string) (*Prism, error) {
	var errs []error
	// Prism binds its port itself, so another process may take the free port
	// first; a few attempts make that harmless.
	for range 3 {
		p, err := startPrism(ctx, bin, env)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func startPrism(ctx context.Context, bin string, env []string) (*Prism, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Prism{
		Endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		out:      &syncbuf.Buffer{},
		exited:   make(chan struct{}),
	}
	// The process outlives the start-up context; Close ends it.
	procCtx, stop := context.WithCancel(context.Background())
	p.stop = stop
	p.cmd = exec.CommandContext(procCtx, bin, "--job_port="+strconv.Itoa(port), "--serve_http=false", "--log_level=warn")
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		stop()
		return nil, fmt.Errorf("starting prism: %w", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	p.Conn, err = grpc.NewClient(p.Endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		p.Close()
		return nil, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-readyCtx.Done():
		}
	}()
	_, err = jobpb.NewJobServiceClient(p.Conn).GetJobs(readyCtx, &jobpb.GetJobsRequest{}, grpc.WaitForReady(true))
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("prism on %s did not become ready: %w\n%s", p.Endpoint, err, p.Output())
	}
	return p, nil
}

// Output returns what prism has logged so far.
func (p *Prism) Output() string { return p.out.String() }

// Close kills prism and waits for it to exit.
func (p *Prism) Close() error {
	if p.Conn != nil {
		p.Conn.Close()
	}
	p.stop()
	<-p.exited
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Package stagetest runs real Beam components for tests of staging and
// submission: the upstream prism job server as a child process, go build
// for the binaries the tests stage and run, and the retrieval of what was
// staged, as a worker retrieves it.
package stagetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
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

// Suite is what Main sets up for a package's tests against prism.
type Suite struct {
	// Prism is the job server the tests share.
	Prism *Prism
	// Dir holds the binaries built for the tests; they may build more
	// there.
	Dir string
	// Bins are the built binaries by name, prism's among them.
	Bins map[string]string
}

// Main is the body of a TestMain for tests against prism: unless -short,
// it builds prism and pkgs (name to import path) concurrently into a
// temporary directory, starts prism, and hands the Suite to use before the
// tests run; afterwards it stops prism and removes the directory. In
// -short mode the tests run with no Suite. It returns the exit code, 1
// with the reason on stderr when the set-up fails.
func Main(m *testing.M, timeout time.Duration, pkgs map[string]string, use func(*Suite)) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() || fuzzing() {
		return m.Run()
	}
	s, err := setUp(timeout, pkgs)
	if s != nil {
		defer os.RemoveAll(s.Dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Prism.Close()
	use(s)
	return m.Run()
}

// fuzzing reports whether the test binary fuzzes a target, which needs no
// job server or pipeline: each fuzz worker process would otherwise build
// them before it ran an input.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

func setUp(timeout time.Duration, pkgs map[string]string) (*Suite, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "stagetest-")
	if err != nil {
		return nil, err
	}
	s := &Suite{Dir: dir, Bins: map[string]string{}}
	all := map[string]string{"prism": PrismPackage}
	for name, pkg := range pkgs {
		all[name] = pkg
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for name, pkg := range all {
		wg.Go(func() {
			bin, err := Build(ctx, dir, name, pkg)
			mu.Lock()
			defer mu.Unlock()
			s.Bins[name], errs = bin, append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	if s.Prism, err = StartPrism(ctx, s.Bins["prism"]); err != nil {
		return s, err
	}
	return s, nil
}

// Fetch reads an artifact back from a job server's retrieval service, as
// a worker does, and returns its sha256 and size. The server may send it
// in one message (prism does), which is then held in memory whole.
func Fetch(ctx context.Context, conn grpc.ClientConnInterface, a *pipepb.ArtifactInformation) (string, int64, error) {
	stream, err := jobpb.NewArtifactRetrievalServiceClient(conn).GetArtifact(ctx,
		&jobpb.GetArtifactRequest{Artifact: a}, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	var n int64
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			return "", n, err
		}
		h.Write(resp.GetData())
		n += int64(len(resp.GetData()))
	}
}

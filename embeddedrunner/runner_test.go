package embeddedrunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"

	"github.com/beamctl/beamctl/internal/syncbuf"
)

func debugLogger(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func start(t *testing.T, opts Options) *Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func portOf(t *testing.T, endpoint string) int {
	t.Helper()
	host, p, err := net.SplitHostPort(endpoint)
	if err != nil {
		t.Fatalf("endpoint %q: %v", endpoint, err)
	}
	if host != "127.0.0.1" {
		t.Fatalf("endpoint %q: host %q, want 127.0.0.1", endpoint, host)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 {
		t.Fatalf("endpoint %q: bad port", endpoint)
	}
	return port
}

func TestStartListClose(t *testing.T) {
	var logs syncbuf.Buffer
	r := start(t, Options{Logger: debugLogger(&logs)})
	port := portOf(t, r.Endpoint())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := r.Client().GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		t.Fatalf("GetJobs: %v", err)
	}
	if n := len(resp.GetJobInfo()); n != 0 {
		t.Errorf("fresh runner has %d jobs, want 0", n)
	}
	if r.Conn() == nil || r.Conn().Target() != r.Endpoint() {
		t.Errorf("Conn() does not target %s", r.Endpoint())
	}

	// While prism serves, its listener holds the port on every address.
	if l, err := net.Listen("tcp", r.Endpoint()); err == nil {
		l.Close()
		t.Fatalf("port %d could be bound while the runner serves", port)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, addr := range []string{r.Endpoint(), fmt.Sprintf(":%d", port)} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("after Close, %s cannot be bound: %v", addr, err)
		}
		l.Close()
	}
	if _, err := r.Client().GetJobs(ctx, &jobpb.GetJobsRequest{}); err == nil {
		t.Errorf("GetJobs succeeded after Close")
	}
	assertNoSocketsOnPort(t, port)
	if !strings.Contains(logs.String(), "embedded runner stopped") {
		t.Errorf("no stop message in the debug log:\n%s", logs.String())
	}
}

func TestConcurrentRunners(t *testing.T) {
	const n = 2
	runners := make([]*Runner, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		wg.Go(func() { runners[i], errs[i] = Start(ctx, Options{}) })
	}
	wg.Wait()
	for i, r := range runners {
		if errs[i] != nil {
			t.Fatalf("Start #%d: %v", i, errs[i])
		}
		t.Cleanup(func() { r.Close() })
	}
	if runners[0].Endpoint() == runners[1].Endpoint() {
		t.Fatalf("both runners on %s", runners[0].Endpoint())
	}
	for i, r := range runners {
		if _, err := r.Client().GetJobs(ctx, &jobpb.GetJobsRequest{}); err != nil {
			t.Errorf("runner #%d GetJobs: %v", i, err)
		}
	}
	// Closing one leaves the other serving.
	if err := runners[0].Close(); err != nil {
		t.Fatalf("Close #0: %v", err)
	}
	if _, err := runners[1].Client().GetJobs(ctx, &jobpb.GetJobsRequest{}); err != nil {
		t.Errorf("runner #1 GetJobs after closing #0: %v", err)
	}
}

func TestPortTaken(t *testing.T) {
	// Occupied on every interface, as another process could do between the
	// choice of a port and prism's listen.
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name    string
		ports   func() func() (int, error)
		wantErr bool
	}{
		{
			name: "taken once then free",
			ports: func() func() (int, error) {
				first := true
				return func() (int, error) {
					if first {
						first = false
						return takenPort, nil
					}
					return freePort()
				}
			},
		},
		{
			name: "always taken",
			ports: func() func() (int, error) {
				return func() (int, error) { return takenPort, nil }
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := Start(ctx, Options{Logger: debugLogger(&logs), pickPort: tt.ports()})
			if tt.wantErr {
				if err == nil {
					r.Close()
					t.Fatalf("Start succeeded on a taken port")
				}
				if !strings.Contains(err.Error(), strconv.Itoa(takenPort)) {
					t.Errorf("error %q does not name port %d", err, takenPort)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer r.Close()
			if portOf(t, r.Endpoint()) == takenPort {
				t.Fatalf("runner claims the taken port %d", takenPort)
			}
			if _, err := r.Client().GetJobs(ctx, &jobpb.GetJobsRequest{}); err != nil {
				t.Errorf("GetJobs: %v", err)
			}
			if !strings.Contains(logs.String(), "retrying on another port") {
				t.Errorf("retry not logged:\n%s", logs.String())
			}
		})
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := Start(ctx, Options{})
	if err == nil {
		r.Close()
		t.Fatal("Start succeeded with a cancelled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", err)
	}
}

// TestFailsClosed makes confining prism to loopback fail: Start refuses to
// run a job server other machines could reach, and releases its port,
// unless the caller accepts the exposure.
func TestFailsClosed(t *testing.T) {
	failing := func(*serverSocket) (string, error) { return "", errors.New("no SO_BINDTODEVICE here") }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Start(ctx, Options{confine: failing})
	if err == nil {
		r.Close()
		t.Fatal("Start succeeded with prism listening on every interface")
	}
	if !strings.Contains(err.Error(), "cannot be confined to loopback here (no SO_BINDTODEVICE here)") || !strings.Contains(err.Error(), "set Expose") {
		t.Errorf("Start error = %q", err)
	}
	var logs syncbuf.Buffer
	r = start(t, Options{confine: failing, AllowUnconfined: true, Logger: debugLogger(&logs)})
	if !strings.Contains(logs.String(), "other machines may submit jobs to it") {
		t.Errorf("no warning about the exposure in:\n%s", logs.String())
	}
	if _, err := r.Client().GetJobs(ctx, &jobpb.GetJobsRequest{}); err != nil {
		t.Errorf("GetJobs on the accepted runner: %v", err)
	}
}

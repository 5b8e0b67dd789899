package submit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/internal/syncbuf"
	"github.com/beamctl/beamctl/submit"
)

// listingJobs is a job service that knows no jobs.
type listingJobs struct {
	jobpb.UnimplementedJobServiceServer
}

func (listingJobs) GetJobs(context.Context, *jobpb.GetJobsRequest) (*jobpb.GetJobsResponse, error) {
	return &jobpb.GetJobsResponse{}, nil
}

// serveGRPC serves srv on a free 127.0.0.1 port until the test ends.
func serveGRPC(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// selfSigned makes a certificate for names, signed by its own key, and
// writes it as a CA file.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

func TestDial(t *testing.T) {
	cert, caFile := selfSigned(t, "jobs.example")
	tlsJobs := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	jobpb.RegisterJobServiceServer(tlsJobs, listingJobs{})
	tlsAddr := serveGRPC(t, tlsJobs)
	plainJobs := grpc.NewServer()
	jobpb.RegisterJobServiceServer(plainJobs, listingJobs{})
	plainAddr := serveGRPC(t, plainJobs)
	otherAddr := serveGRPC(t, grpc.NewServer())
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	webAddr := strings.TrimPrefix(web.URL, "http://")
	down := grpctest.FreeAddr(t)
	notCA := filepath.Join(t.TempDir(), "not-a-ca.pem")
	if err := os.WriteFile(notCA, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		endpoint string
		opts     submit.DialOptions
		wantKind error
		wantMsg  string
		wantLog  string // in the logs, at Info
	}{
		{name: "plaintext job server", endpoint: plainAddr},
		{name: "TLS job server", endpoint: tlsAddr, opts: submit.DialOptions{CAFile: caFile, ServerName: "jobs.example"}},
		{name: "empty endpoint", endpoint: "", wantKind: submit.ErrInvalidEndpoint, wantMsg: `invalid endpoint "": it is empty; want HOST:PORT, e.g. localhost:8099`},
		{name: "no port", endpoint: "jobs.example", wantKind: submit.ErrInvalidEndpoint, wantMsg: `invalid endpoint "jobs.example": missing port in address; want HOST:PORT`},
		{name: "three parts", endpoint: "jobs.example:8099:x", wantKind: submit.ErrInvalidEndpoint, wantMsg: `invalid endpoint "jobs.example:8099:x": too many colons in address`},
		{name: "no host", endpoint: ":8099", wantKind: submit.ErrInvalidEndpoint, wantMsg: "the host is missing"},
		{name: "port zero", endpoint: "jobs.example:0", wantKind: submit.ErrInvalidEndpoint, wantMsg: `port "0" is not a number from 1 to 65535`},
		{name: "port name", endpoint: "jobs.example:beam", wantKind: submit.ErrInvalidEndpoint, wantMsg: `port "beam" is not a number`},
		{name: "URL", endpoint: "http://jobs.example:8099", wantKind: submit.ErrInvalidEndpoint, wantMsg: "it has a URL scheme"},
		{
			name: "nothing listening", endpoint: down, opts: submit.DialOptions{ConnectTimeout: 500 * time.Millisecond},
			wantKind: submit.ErrUnreachable,
			wantMsg:  "cannot reach job server at " + down + " within 500ms: dial tcp " + down + ": connect: connection refused — check Endpoint and that the job server is running",
		},
		{
			// Long enough a wait to be told about.
			name: "nothing listening for a while", endpoint: down, opts: submit.DialOptions{ConnectTimeout: 4 * time.Second},
			wantKind: submit.ErrUnreachable,
			wantMsg:  "cannot reach job server at " + down + " within 4s",
			wantLog:  `msg="the job server does not answer yet; waiting for it" endpoint=` + down,
		},
		{name: "HTTP/1 server", endpoint: webAddr, wantKind: submit.ErrNotJobServer, wantMsg: webAddr + " is not a Beam job server (error reading server preface"},
		{name: "gRPC server without the Job API", endpoint: otherAddr, wantKind: submit.ErrNotJobServer, wantMsg: otherAddr + " is not a Beam job server (it answers gRPC but not the Beam Job API"},
		{name: "plaintext to a TLS server", endpoint: tlsAddr, wantKind: submit.ErrTLSMismatch, wantMsg: "job server at " + tlsAddr + " expects TLS: turn on TLS"},
		{name: "TLS to a plaintext server", endpoint: plainAddr, opts: submit.DialOptions{TLS: true}, wantKind: submit.ErrTLSMismatch, wantMsg: "job server at " + plainAddr + " does not speak TLS: turn off TLS"},
		{name: "untrusted certificate", endpoint: tlsAddr, opts: submit.DialOptions{TLS: true, ServerName: "jobs.example"}, wantKind: submit.ErrTLSConfig, wantMsg: "certificate signed by unknown authority — pass the CA that signed it with CAFile"},
		{name: "certificate for another name", endpoint: tlsAddr, opts: submit.DialOptions{CAFile: caFile}, wantKind: submit.ErrTLSConfig, wantMsg: "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs — use a name the certificate carries in Endpoint, or pass it with ServerName"},
		{name: "CA file without certificates", endpoint: tlsAddr, opts: submit.DialOptions{CAFile: notCA}, wantKind: submit.ErrTLSConfig, wantMsg: "CA file " + notCA + " holds no PEM certificate"},
		{name: "missing CA file", endpoint: tlsAddr, opts: submit.DialOptions{CAFile: notCA + ".gone"}, wantKind: submit.ErrTLSConfig, wantMsg: "reading the CA file " + notCA + ".gone: open " + notCA + ".gone: no such file or directory: give the PEM file of the job server's certificate authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			var logs syncbuf.Buffer
			tt.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			conn, err := submit.Dial(ctx, tt.endpoint, tt.opts)
			took := time.Since(start)
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("logs %q lack %q", logs.String(), tt.wantLog)
			}
			if tt.wantLog == "" && strings.Contains(logs.String(), "waiting for it") {
				t.Errorf("a short wait was logged: %q", logs.String())
			}
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("Dial = %v; want a connection", err)
				}
				defer conn.Close()
				if _, err := submit.ListJobs(ctx, conn); err != nil {
					t.Errorf("ListJobs over the dialled connection: %v", err)
				}
				return
			}
			if conn != nil {
				conn.Close()
			}
			t.Logf("Dial: %v", err)
			if !errors.Is(err, tt.wantKind) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Dial = %v; want %v saying %q", err, tt.wantKind, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has more than one line: %q", err)
			}
			var de *submit.DialError
			if !errors.As(err, &de) || de.Endpoint != tt.endpoint {
				t.Errorf("error %#v is not a DialError for %s", err, tt.endpoint)
			}
			// Only waiting for an answer may take the connect timeout.
			if limit := max(tt.opts.ConnectTimeout+5*time.Second, 5*time.Second); took > limit {
				t.Errorf("Dial took %v; want under %v", took, limit)
			}
		})
	}
}

// TestDialPrism dials the upstream job server, in plaintext and (wrongly)
// with TLS.
func TestDialPrism(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := submit.Dial(ctx, prism.Endpoint, submit.DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	conn.Close()
	_, err = submit.Dial(ctx, prism.Endpoint, submit.DialOptions{TLS: true})
	if !errors.Is(err, submit.ErrTLSMismatch) || !strings.Contains(err.Error(), "does not speak TLS: turn off TLS") {
		t.Errorf("Dial with TLS = %v; want ErrTLSMismatch telling to turn TLS off", err)
	}
}

// signalHandler reports log records with a given message on a channel.
type signalHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestDialWaitsForServer starts the job server after Dial found nothing
// listening: Dial keeps trying until the connect timeout.
func TestDialWaitsForServer(t *testing.T) {
	addr := grpctest.FreeAddr(t)
	failed := make(chan struct{}, 1)
	logger := slog.New(signalHandler{msg: "job server check failed", ch: failed})
	type result struct {
		conn *grpc.ClientConn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		conn, err := submit.Dial(context.Background(), addr, submit.DialOptions{ConnectTimeout: 30 * time.Second, Logger: logger})
		res <- result{conn, err}
	}()
	select {
	case <-failed:
	case r := <-res:
		t.Fatalf("Dial returned before the server started: %v", r.err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	srv := grpc.NewServer()
	jobpb.RegisterJobServiceServer(srv, listingJobs{})
	go srv.Serve(lis)
	defer srv.Stop()
	r := <-res
	if r.err != nil {
		t.Fatalf("Dial = %v; want it to connect once the server is up", r.err)
	}
	r.conn.Close()
}

func TestDialCancelled(t *testing.T) {
	addr := grpctest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan struct{}, 1)
	logger := slog.New(signalHandler{msg: "job server check failed", ch: failed})
	go func() {
		<-failed
		cancel()
	}()
	start := time.Now()
	_, err := submit.Dial(ctx, addr, submit.DialOptions{Logger: logger})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("Dial = %v after %v; want context.Canceled at once", err, time.Since(start))
	}
}

// TestDialWarnsOfPlaintext checks that only plaintext to another machine
// is warned about; the warning comes before any connection is tried.
func TestDialWarnsOfPlaintext(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		opts     submit.DialOptions
		warn     bool
	}{
		{"192.0.2.1:8099", submit.DialOptions{}, true}, // TEST-NET-1: nothing answers
		{"192.0.2.1:8099", submit.DialOptions{TLS: true}, false},
		{"127.0.0.1:1", submit.DialOptions{}, false},
	} {
		var logs bytes.Buffer
		tt.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		tt.opts.ConnectTimeout = 100 * time.Millisecond
		if conn, err := submit.Dial(context.Background(), tt.endpoint, tt.opts); err == nil {
			conn.Close()
		}
		if got := strings.Contains(logs.String(), "without TLS"); got != tt.warn {
			t.Errorf("Dial(%s, TLS %v) warned %v, want %v:\n%s", tt.endpoint, tt.opts.TLS, got, tt.warn, logs.String())
		}
	}
}

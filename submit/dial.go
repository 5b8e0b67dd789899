package submit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/problem"
)

// DefaultConnectTimeout bounds the wait for a job server to answer Dial.
const DefaultConnectTimeout = 30 * time.Second

// Errors that Dial returns match one of these with errors.Is.
var (
	// ErrInvalidEndpoint: the endpoint is not HOST:PORT.
	ErrInvalidEndpoint = errors.New("invalid job server endpoint")
	// ErrUnreachable: nothing answered at the endpoint in time, or the
	// connection to the job server broke.
	ErrUnreachable = errors.New("job server unreachable")
	// ErrNotJobServer: something answered, but not the Beam Job API.
	ErrNotJobServer = errors.New("not a beam job server")
	// ErrTLSMismatch: one side speaks TLS and the other does not.
	ErrTLSMismatch = errors.New("tls mismatch")
	// ErrTLSConfig: the TLS settings are unusable or the server's
	// certificate is not trusted.
	ErrTLSConfig = errors.New("tls configuration")
	// ErrRejected: the job server answered the connection check with an
	// error, e.g. because it wants credentials.
	ErrRejected = errors.New("job server rejected the request")
)

// DialOptions configure Dial. The zero value dials in plaintext.
type DialOptions struct {
	// TLS makes the connection use TLS, verified against the system roots
	// or CAFile.
	TLS bool
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the system roots; it implies TLS.
	CAFile string
	// ServerName overrides the name the server certificate must carry,
	// for servers reached by an address their certificate does not name;
	// it implies TLS.
	ServerName string
	// ConnectTimeout bounds the wait for the job server to answer; 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

// Validate checks the options without touching anything: a negative
// ConnectTimeout is refused, 0 takes the default.
func (o DialOptions) Validate() error {
	if o.ConnectTimeout < 0 {
		return problem.Usagef(fmt.Sprintf("give a duration such as 30s (0 takes the default, %v)", DefaultConnectTimeout),
			"{ConnectTimeout} %v is negative", o.ConnectTimeout).About("ConnectTimeout")
	}
	return nil
}

// UseTLS reports whether the options make the connection use TLS.
func (o DialOptions) UseTLS() bool { return o.TLS || o.CAFile != "" || o.ServerName != "" }

// DialError is an error of Dial. It matches its Kind, one of the Err
// sentinels of this package, and its Cause with errors.Is and errors.As.
type DialError struct {
	Endpoint string
	Kind     error
	Cause    error
	msg      string
}

// Error words the problem with the settings' own names (DialOptions
// fields, and Endpoint for the address).
func (e *DialError) Error() string { return problem.Plain(e.msg) }

// Render words the problem with the caller's names for settings.
func (e *DialError) Render(name func(string) string) string { return problem.Sub(e.msg, name) }

func (e *DialError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

func dialError(endpoint string, kind, cause error, format string, args ...any) *DialError {
	return &DialError{Endpoint: endpoint, Kind: kind, Cause: cause, msg: fmt.Sprintf(format, args...)}
}

// Keepalive pings let a stream notice a job server that vanished without
// closing its connections. Servers reject pings more frequent than every
// five minutes by default (gRPC's enforcement policy) and then close the
// connection, so the client stays above that.
var jobServerKeepalive = keepalive.ClientParameters{Time: 5*time.Minute + 10*time.Second, Timeout: 20 * time.Second}

// GRPCOptions are the gRPC dial options Dial uses for these options. They
// also suit other endpoints of the same job server, such as a separate
// artifact staging endpoint (SubmitOptions.DialOptions).
func (o DialOptions) GRPCOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if o.UseTLS() {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, &DialError{Kind: ErrTLSConfig, Cause: err, msg: fmt.Sprintf("reading the CA file %s: %v: give the PEM file of the job server's certificate authority", o.CAFile, err)}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, &DialError{Kind: ErrTLSConfig, msg: fmt.Sprintf("CA file %s holds no PEM certificate", o.CAFile)}
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Pipelines with large embedded payloads exceed gRPC's 4 MiB default,
		// and GetPipeline sends them back.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		grpc.WithKeepaliveParams(jobServerKeepalive),
	}, nil
}

// ParseEndpoint checks that endpoint is HOST:PORT and returns its parts.
func ParseEndpoint(endpoint string) (host string, port int, err error) {
	bad := func(why string) error {
		return dialError(endpoint, ErrInvalidEndpoint, nil, "invalid endpoint %q: %s; want HOST:PORT, e.g. localhost:8099", endpoint, why)
	}
	if endpoint == "" {
		return "", 0, bad("it is empty")
	}
	if strings.Contains(endpoint, "://") {
		return "", 0, bad("it has a URL scheme")
	}
	host, p, err := net.SplitHostPort(endpoint)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", 0, bad(ae.Err)
		}
		return "", 0, bad(err.Error())
	}
	if host == "" {
		return "", 0, bad("the host is missing")
	}
	if strings.ContainsAny(host, " \t/") {
		return "", 0, bad("the host is not a host name or IP address")
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, bad(fmt.Sprintf("port %q is not a number from 1 to 65535", p))
	}
	return host, port, nil
}

// Dial connects to the Beam job server at endpoint (HOST:PORT) and checks,
// within the connect timeout, that a Job API answers there. Its errors say
// what is wrong and how to fix it, and match ErrInvalidEndpoint,
// ErrUnreachable, ErrNotJobServer, ErrTLSMismatch, ErrTLSConfig or
// ErrRejected. Plaintext to another machine is allowed, with a warning.
// Close the connection when done.
func Dial(ctx context.Context, endpoint string, o DialOptions) (*grpc.ClientConn, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	host, _, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	gopts, err := o.GRPCOptions()
	if err != nil {
		var de *DialError
		if errors.As(err, &de) {
			de.Endpoint = endpoint
		}
		return nil, err
	}
	conn, err := grpc.NewClient(endpoint, gopts...)
	if err != nil {
		return nil, dialError(endpoint, ErrInvalidEndpoint, err, "invalid endpoint %q: %v", endpoint, err)
	}
	if !o.UseTLS() && !netaddr.Local(endpoint) {
		o.Logger.Warn("connecting to the job server without TLS: pipelines, worker binaries and job details cross the network in plaintext", "endpoint", endpoint)
	}
	o.Logger.Debug("connecting to job server", "endpoint", endpoint, "tls", o.UseTLS(), "timeout", o.ConnectTimeout)
	if err := checkJobServer(ctx, conn, endpoint, host, o); err != nil {
		conn.Close()
		return nil, err
	}
	o.Logger.Debug("job server answered", "endpoint", endpoint)
	return conn, nil
}

// waitNotice is how long a connection may fail before the wait is logged.
const waitNotice = 2 * time.Second

// checkJobServer calls GetJobs until it succeeds, fails in a way waiting
// cannot fix, or the connect timeout passes. gRPC keeps a channel that
// failed to connect in TRANSIENT_FAILURE while it retries, failing calls at
// once with the last connection error; calls that wait for the channel to
// be ready would hide that error, so the check calls without waiting and
// watches the channel state in between.
func checkJobServer(ctx context.Context, conn *grpc.ClientConn, endpoint, host string, o DialOptions) error {
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	client := jobpb.NewJobServiceClient(conn)
	var last error
	probed, told := false, false
	start := time.Now()
	for {
		_, err := client.GetJobs(cctx, &jobpb.GetJobsRequest{})
		if err == nil {
			return nil
		}
		if cctx.Err() != nil {
			break
		}
		o.Logger.Debug("job server check failed", "endpoint", endpoint, "error", err)
		if derr := classifyDialError(endpoint, err, o); derr != nil {
			return derr
		}
		last = err
		// A server that hangs up before the HTTP/2 preface may be a TLS
		// server spoken to in plaintext: find out once, so the error can say so.
		if !o.UseTLS() && !probed && strings.Contains(grpcMessage(err), "server preface") {
			probed = true
			if speaksTLS(cctx, endpoint, host) {
				return dialError(endpoint, ErrTLSMismatch, err, "job server at %s expects TLS: turn on {TLS}", endpoint)
			}
		}
		st := conn.GetState()
		if st == connectivity.Idle {
			conn.Connect()
		}
		if told {
			if !conn.WaitForStateChange(cctx, st) {
				break
			}
			continue
		}
		// A job server may still be starting, so a refusal is waited
		// out; a wait long enough to notice is said.
		wctx, cancelWait := context.WithTimeout(cctx, waitNotice-time.Since(start))
		changed := conn.WaitForStateChange(wctx, st)
		cancelWait()
		switch {
		case cctx.Err() != nil:
		case !changed:
			told = true
			if left := o.ConnectTimeout - time.Since(start); left > time.Second {
				o.Logger.Info("the job server does not answer yet; waiting for it", "endpoint", endpoint,
					"error", connectionCause(err), "up_to", left.Round(time.Second))
			}
		}
		if cctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("connecting to job server at %s: %w", endpoint, ctx.Err())
	}
	cause := "no answer"
	if last != nil {
		cause = connectionCause(last)
	}
	return dialError(endpoint, ErrUnreachable, last, "cannot reach job server at %s within %v: %s — check {Endpoint} and that the job server is running", endpoint, o.ConnectTimeout, cause)
}

// classifyDialError turns a failed check into the error to report, or nil
// when waiting may still help.
func classifyDialError(endpoint string, err error, o DialOptions) error {
	code := status.Code(err)
	msg := grpcMessage(err)
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return dialError(endpoint, ErrTLSMismatch, err, "job server at %s does not speak TLS: turn off {TLS} and drop {CAFile} and {ServerName}", endpoint)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		fix := "pass the CA that signed it with {CAFile}, or the name it was issued for with {ServerName}"
		switch {
		case strings.Contains(msg, "unknown authority"):
			fix = "pass the CA that signed it with {CAFile}"
		case strings.Contains(msg, "valid for") || strings.Contains(msg, "SANs"):
			fix = "use a name the certificate carries in {Endpoint}, or pass it with {ServerName}"
		}
		return dialError(endpoint, ErrTLSConfig, err, "job server at %s presented a certificate that is not trusted: %s — %s", endpoint, connectionCause(err), fix)
	case strings.Contains(msg, "tls:"):
		return dialError(endpoint, ErrTLSConfig, err, "TLS handshake with %s failed: %s", endpoint, connectionCause(err))
	case code == codes.Unimplemented:
		return dialError(endpoint, ErrNotJobServer, err, "%s is not a Beam job server (it answers gRPC but not the Beam Job API: %s) — check {Endpoint}", endpoint, msg)
	case strings.Contains(msg, "frame too large") || strings.Contains(msg, "HTTP/1") ||
		strings.Contains(msg, "content-type") || strings.Contains(msg, "unexpected HTTP status"):
		return dialError(endpoint, ErrNotJobServer, err, "%s is not a Beam job server (%s) — check {Endpoint}", endpoint, connectionCause(err))
	case isTransient(code) || code == codes.DeadlineExceeded || code == codes.Canceled:
		return nil
	}
	return dialError(endpoint, ErrRejected, err, "job server at %s refused beamctl: %s", endpoint, err)
}

// speaksTLS reports whether a TLS handshake succeeds at endpoint. It only
// detects the protocol: nothing is sent over the connection, so its
// certificate need not be trusted.
func speaksTLS(ctx context.Context, endpoint, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}}
	c, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func grpcMessage(err error) string { return status.Convert(err).Message() }

// connectionCause extracts the innermost description from gRPC's layered
// connection errors, e.g. "dial tcp 10.0.0.1:8099: connect: connection
// refused" out of `connection error: desc = "transport: Error while dialing:
// dial tcp ...`.
func connectionCause(err error) string {
	msg := grpcMessage(err)
	if _, rest, ok := strings.Cut(msg, `desc = "`); ok {
		msg = strings.TrimSuffix(rest, `"`)
	}
	for _, prefix := range []string{"transport: Error while dialing: ", "transport: authentication handshake failed: ", "transport: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

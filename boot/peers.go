package boot

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/peercred"
	"github.com/beamctl/beamctl/internal/problem"
)

// A pool runs whatever binary a StartWorker request points it at, so who
// may send one is decided per connection: a process of the pool's own user
// (or root) on this machine. Listening on loopback alone keeps out other
// machines, not other users of this one.

// peerCreds is plaintext transport that learns, during the handshake, which
// user runs the client (internal/peercred).
type peerCreds struct {
	credentials.TransportCredentials
}

// peerInfo is who the client is, as far as the system can tell.
type peerInfo struct {
	credentials.CommonAuthInfo
	uid    uint32
	err    error // peercred.ErrUnknown when the system cannot say
	remote net.Addr
}

func (peerInfo) AuthType() string { return "beamctl-peer-uid" }

func newPeerCreds() credentials.TransportCredentials {
	return peerCreds{insecure.NewCredentials()}
}

func (c peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, _, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		return nil, nil, err
	}
	uid, uerr := peercred.UID(conn.LocalAddr(), conn.RemoteAddr())
	return conn, peerInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		uid:            uid,
		err:            uerr,
		remote:         conn.RemoteAddr(),
	}, nil
}

func (c peerCreds) Clone() credentials.TransportCredentials {
	return peerCreds{c.TransportCredentials.Clone()}
}

// authorize lets a call through when its client may start workers.
func (p *Pool) authorize(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := p.admitPeer(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (p *Pool) admitPeer(ctx context.Context) error {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.PermissionDenied, "the worker pool cannot tell who is calling")
	}
	pi, ok := pr.AuthInfo.(peerInfo)
	if !ok {
		return status.Error(codes.PermissionDenied, "the worker pool cannot tell who is calling")
	}
	self := uint32(os.Getuid())
	switch {
	case pi.err == nil && (pi.uid == self || pi.uid == 0):
		return nil
	case pi.err == nil && p.opts.AllowOtherUsers:
		return nil
	case pi.err == nil:
		p.logger.Warn("refused a worker request from another user", "peer_uid", pi.uid, "peer", pi.remote, "pool_uid", self)
		return status.Errorf(codes.PermissionDenied, "this worker pool starts workers only for user %d (and root), not for user %d", self, pi.uid)
	case !errors.Is(pi.err, peercred.ErrUnknown):
		p.logger.Warn("refused a worker request: its user could not be looked up", "peer", pi.remote, "error", pi.err)
		return status.Error(codes.PermissionDenied, "the worker pool could not tell which user is calling")
	}
	// The system cannot say who the peer is: it is on another machine,
	// which only an exposed pool serves, or this system keeps no socket
	// owners, where loopback is all that holds.
	if tcp, ok := pi.remote.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && !p.opts.Expose {
		p.logger.Warn("refused a worker request from another machine", "peer", pi.remote)
		return status.Error(codes.PermissionDenied, "this worker pool serves this machine only")
	}
	return nil
}

// checkAddress refuses to listen beyond loopback unless asked to.
func checkAddress(address string, expose bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return problem.Usagef("give HOST:PORT, e.g. 127.0.0.1:50000", "{Address} %q is not HOST:PORT", address).About("Address")
	}
	if expose || netaddr.LoopbackHost(host) {
		return nil
	}
	what := "host " + strconv.Quote(host) + " is not a loopback address"
	if host == "" {
		what = "has no host, which listens on every interface"
	}
	return problem.Usagef("listen on 127.0.0.1, or set {Expose} to let other machines start workers as this user",
		"{Address} %s: anyone who can reach it could run programs on this machine", what).About("Address")
}

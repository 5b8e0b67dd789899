package wrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/internal/beam"
)

// relay stands in for a worker on the runner's control service until the
// worker itself connects: it opens the worker's control stream at once, so
// the runner counts the worker as connected, and hands that stream to the
// worker when it comes. Instructions the runner sends meanwhile wait in the
// stream. Only the control service goes through it; the worker reaches the
// data, state and logging services directly.
type relay struct {
	fnpb.UnimplementedBeamFnControlServer

	id     string
	conn   *grpc.ClientConn
	client fnpb.BeamFnControlClient
	lis    net.Listener
	srv    *grpc.Server
	served chan struct{}

	mu         sync.Mutex
	held       fnpb.BeamFnControl_ControlClient
	cancelHeld context.CancelFunc
	closed     bool
}

// startRelay opens worker id's control stream to the runner at endpoint
// and serves the relay on 127.0.0.1. The stream lives until Close, not
// until ctx ends: ctx bounds only the start.
func startRelay(ctx context.Context, id, endpoint string) (*relay, error) {
	conn, err := beam.DialRunner(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to the runner's control service %s: %w", endpoint, err)
	}
	r := &relay{id: id, conn: conn, client: fnpb.NewBeamFnControlClient(conn), served: make(chan struct{})}
	streamCtx, cancel := context.WithCancel(beam.WithWorkerID(context.WithoutCancel(ctx), id))
	opened := make(chan error, 1)
	go func() {
		var err error
		r.held, err = r.client.Control(streamCtx, grpc.WaitForReady(true))
		opened <- err
	}()
	select {
	case err = <-opened:
	case <-ctx.Done():
		cancel()
		err = <-opened
	}
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("open the worker's control stream to %s: %w", endpoint, err)
	}
	r.cancelHeld = cancel
	if r.lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("start the control relay: %w", err)
	}
	// Instructions carry whole bundle descriptors: no smaller bound than
	// the runner's own.
	r.srv = grpc.NewServer(grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32))
	fnpb.RegisterBeamFnControlServer(r.srv, r)
	go func() {
		defer close(r.served)
		_ = r.srv.Serve(r.lis)
	}()
	return r, nil
}

// Address is where the worker connects instead of the runner.
func (r *relay) Address() string { return r.lis.Addr().String() }

// Close ends the relay and the streams it carries.
func (r *relay) Close() {
	r.mu.Lock()
	r.closed = true
	if r.cancelHeld != nil {
		r.cancelHeld()
	}
	r.mu.Unlock()
	r.srv.Stop()
	<-r.served
	r.conn.Close()
}

// stream returns the held stream for the worker's first connection, and a
// new one for any later.
func (r *relay) stream(ctx context.Context) (fnpb.BeamFnControl_ControlClient, context.CancelFunc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, errors.New("the control relay is closed")
	}
	if r.held != nil {
		s, cancel := r.held, r.cancelHeld
		r.held, r.cancelHeld = nil, nil
		return s, cancel, nil
	}
	ctx, cancel := context.WithCancel(beam.WithWorkerID(ctx, r.id))
	s, err := r.client.Control(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return s, cancel, nil
}

// Control passes the worker's control stream on to the runner and back.
func (r *relay) Control(down fnpb.BeamFnControl_ControlServer) error {
	up, cancel, err := r.stream(context.WithoutCancel(down.Context()))
	if err != nil {
		return err
	}
	// Ending the runner's side tells it the worker is gone, as the worker's
	// own disconnection would.
	defer cancel()
	errc := make(chan error, 2)
	go func() {
		for {
			req, err := up.Recv()
			if err != nil {
				errc <- err
				return
			}
			if err := down.Send(req); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		for {
			resp, err := down.Recv()
			if err != nil {
				_ = up.CloseSend()
				errc <- err
				return
			}
			if err := up.Send(resp); err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := <-errc; !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// GetProcessBundleDescriptor asks the runner in the worker's name.
func (r *relay) GetProcessBundleDescriptor(ctx context.Context, req *fnpb.GetProcessBundleDescriptorRequest) (*fnpb.ProcessBundleDescriptor, error) {
	return r.client.GetProcessBundleDescriptor(beam.WithWorkerID(ctx, r.id), req)
}

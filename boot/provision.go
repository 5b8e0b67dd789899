package boot

import (
	"context"
	"errors"
	"fmt"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/internal/beam"
)

// provision fetches the worker's provision info from the runner.
func provision(ctx context.Context, endpoint, id string) (*fnpb.ProvisionInfo, error) {
	if endpoint == "" {
		return nil, errors.New("the runner gave no provision endpoint for the worker")
	}
	conn, err := beam.DialRunner(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to provision service %s: %w", endpoint, err)
	}
	defer conn.Close()
	resp, err := fnpb.NewProvisionServiceClient(conn).GetProvisionInfo(beam.WithWorkerID(ctx, id), &fnpb.GetProvisionInfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return nil, fmt.Errorf("get provision info from %s: %w", endpoint, err)
	}
	if resp.GetInfo() == nil {
		return nil, fmt.Errorf("provision service %s returned no provision info", endpoint)
	}
	return resp.GetInfo(), nil
}

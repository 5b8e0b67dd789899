// Command startworker asks a worker pool for a worker, as a runner would:
// startworker POOL_ADDR WORKER_ID PROVISION_ADDR. It exits 0 when the pool
// accepts, 3 when it answers PermissionDenied, 1 otherwise.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: startworker POOL_ADDR WORKER_ID PROVISION_ADDR")
		os.Exit(2)
	}
	conn, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep := &pipepb.ApiServiceDescriptor{Url: os.Args[3]}
	resp, err := fnpb.NewBeamFnExternalWorkerPoolClient(conn).StartWorker(ctx, &fnpb.StartWorkerRequest{
		WorkerId: os.Args[2], ProvisionEndpoint: ep, ArtifactEndpoint: ep, ControlEndpoint: ep, LoggingEndpoint: ep,
	})
	switch {
	case status.Code(err) == codes.PermissionDenied:
		fmt.Println("permission denied:", status.Convert(err).Message())
		os.Exit(3)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case resp.GetError() != "":
		fmt.Fprintln(os.Stderr, "refused:", resp.GetError())
		os.Exit(1)
	}
	fmt.Println("accepted")
}

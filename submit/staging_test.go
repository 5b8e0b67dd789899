package submit_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/grpctest"
	"github.com/beamctl/beamctl/submit"
)

// stagingElsewhere is prism's job service announcing its staging endpoint
// on a port of its own, as Flink's and Spark's job servers do, where nobody
// listens: the fault a port-forward of the job port alone produces.
type stagingElsewhere struct {
	jobpb.UnimplementedJobServiceServer
	real    jobpb.JobServiceClient
	staging string
}

func (s *stagingElsewhere) Prepare(ctx context.Context, req *jobpb.PrepareJobRequest) (*jobpb.PrepareJobResponse, error) {
	resp, err := s.real.Prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.ArtifactStagingEndpoint = &pipepb.ApiServiceDescriptor{Url: s.staging}
	return resp, nil
}

func (s *stagingElsewhere) Run(ctx context.Context, req *jobpb.RunJobRequest) (*jobpb.RunJobResponse, error) {
	return s.real.Run(ctx, req)
}

func TestSubmitStagingUnreachable(t *testing.T) {
	needBinaries(t)
	staging := grpctest.FreeAddr(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	jobpb.RegisterJobServiceServer(srv, &stagingElsewhere{real: jobpb.NewJobServiceClient(prism.Conn), staging: staging})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dir := t.TempDir()
	opts := submit.SubmitOptions{Retry: submit.Retry{Attempts: 1}}

	// The worker must be staged, so an unreachable staging endpoint fails
	// the submission.
	c := captureWordcount(t, wcBin, filepath.Join(dir, "in"), filepath.Join(dir, "out"))
	_, err = submit.Submit(context.Background(), conn, c, opts)
	if want := "the job server's artifact staging endpoint " + staging + " does not answer from here (dial tcp " + staging +
		": connect: connection refused): make that port reachable as well, or put the worker in an image so that nothing is staged"; err == nil || err.Error() != want {
		t.Fatalf("Submit with a worker to stage = %v; want %q", err, want)
	}

	// A job whose worker comes in an image declares no artifacts: it runs
	// without the staging endpoint ever answering.
	c = captureWordcount(t, wcBin, filepath.Join(dir, "in"), filepath.Join(dir, "out"))
	if err := beam.DropWorkerArtifacts(c.Pipeline); err != nil {
		t.Fatal(err)
	}
	pool := onPool(t, c, true)
	job, err := submit.Submit(context.Background(), conn, c, opts)
	if err != nil {
		t.Fatalf("Submit with nothing to stage: %v", err)
	}
	pool.waitAsked(t)
	if err := submit.Cancel(context.Background(), prism.Conn, job.ID); err != nil {
		t.Fatal(err)
	}
	if state, err, events := followJob(t, job.ID); state != jobpb.JobState_CANCELLED {
		t.Fatalf("Follow = %v, %v; want CANCELLED\nevents: %v", state, err, events)
	}
}

package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/stage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// SubmitOptions configure Submit. The zero value is ready to use.
type SubmitOptions struct {
	// Endpoint is the address conn reaches, used in messages and to reach a
	// staging endpoint the job server names by a loopback host. Defaults to
	// the target of a *grpc.ClientConn.
	Endpoint string
	// JobName overrides the captured job name.
	JobName string
	// ChunkSize is the staging chunk size; 0 means stage.DefaultChunkSize.
	ChunkSize int
	// Progress, if set, is told about every staged chunk.
	Progress func(stage.Progress)
	// DialOptions are used when the job server stages artifacts on another
	// endpoint; nil means plaintext.
	DialOptions []grpc.DialOption
	// Retry bounds the retries of transient job server errors.
	Retry Retry
	// Logger receives progress records; nil discards them.
	Logger *slog.Logger
	// Digests knows the digests of files this run has hashed or built, so
	// verifying and staging an unchanged worker does not hash it again.
	// Default: a new cache.
	Digests *digest.Cache
}

// stage serves the preparation's staging session.
func (o *SubmitOptions) stage(ctx context.Context, conn grpc.ClientConnInterface, prep *jobpb.PrepareJobResponse, files stage.Files, needsStaging bool) error {
	stagingConn := conn
	target, same := stagingTarget(o.Endpoint, prep.GetArtifactStagingEndpoint().GetUrl())
	if !same {
		dopts := o.DialOptions
		if dopts == nil {
			dopts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		}
		cc, err := grpc.NewClient(target, dopts...)
		if err != nil {
			return fmt.Errorf("connecting to artifact staging endpoint %s: %w", target, err)
		}
		defer cc.Close()
		stagingConn = cc
	}
	err := stage.Artifacts(ctx, jobpb.NewArtifactStagingServiceClient(stagingConn), prep.GetStagingSessionToken(), files, stage.Options{
		PreparationID: prep.GetPreparationId(),
		ChunkSize:     o.ChunkSize,
		Logger:        o.Logger,
		Progress:      o.Progress,
		Digests:       o.Digests,
	})
	if err != nil && !same && !needsStaging && status.Code(err) == codes.Unavailable {
		// Flink's and Spark's job servers stage on a port of their own,
		// often not forwarded to the client, and run a job whose
		// environments declare nothing without it having been reached.
		o.Logger.Debug("staging endpoint unreachable; the job declares no artifacts, so it runs without", "endpoint", target, "error", err)
		return nil
	}
	if err != nil && !same && status.Code(err) == codes.Unavailable {
		return &kindError{kind: err, msg: fmt.Sprintf("the job server's artifact staging endpoint %s does not answer from here (%s): make that port reachable as well, or put the worker in an image so that nothing is staged",
			target, connectionCause(err))}
	}
	if err != nil {
		return fmt.Errorf("staging artifacts to %s: %w", target, err)
	}
	return nil
}

// declaresArtifacts reports whether any environment of p depends on an
// artifact, which the job server must then have been given.
func declaresArtifacts(p *pipepb.Pipeline) bool {
	for _, env := range p.GetComponents().GetEnvironments() {
		if len(env.GetDependencies()) > 0 {
			return true
		}
	}
	return false
}

// Job is a submitted job.
type Job struct {
	ID       string
	Name     string
	Endpoint string
}

// Submit prepares the captured pipeline on the job service behind conn,
// serves its file artifacts from disk when the service asks for them, and
// runs it. Artifacts are checked against their declared sha256 before the
// job is prepared.
func Submit(ctx context.Context, conn grpc.ClientConnInterface, c *capture.Captured, o SubmitOptions) (*Job, error) {
	if c == nil || c.Pipeline == nil {
		return nil, errors.New("no captured pipeline to submit")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Endpoint == "" {
		o.Endpoint = endpointOf(conn)
	}
	name := c.JobName
	if o.JobName != "" {
		name = o.JobName
	}
	files, err := stage.PipelineFiles(c.Pipeline)
	if err != nil {
		return nil, err
	}
	if o.Digests == nil {
		o.Digests = digest.NewCache()
	}
	if err := files.Verify(ctx, o.Digests); err != nil {
		return nil, err
	}

	client := jobpb.NewJobServiceClient(conn)
	var prep *jobpb.PrepareJobResponse
	// A staging session cannot be resumed, and a preparation whose staging
	// failed is of no further use: a transient failure of either step
	// starts over with a new preparation.
	err = withRetry(ctx, o.Retry, o.Logger, "prepare and stage", transientError, func() error {
		var err error
		prep, err = client.Prepare(ctx, &jobpb.PrepareJobRequest{Pipeline: c.Pipeline, PipelineOptions: c.Options, JobName: name})
		if err != nil {
			return fmt.Errorf("job server %s rejected the pipeline: %w", o.Endpoint, err)
		}
		o.Logger.Debug("prepared job", "preparation_id", prep.GetPreparationId(), "staging_endpoint", prep.GetArtifactStagingEndpoint().GetUrl())
		return o.stage(ctx, conn, prep, files, declaresArtifacts(c.Pipeline))
	})
	if err != nil {
		return nil, err
	}

	// The Job API has no idempotency key, and a server that received a Run
	// whose reply was lost may start the job again when asked twice (prism
	// does). So Run is retried only when the server says it did not act;
	// a connection being re-established is waited for beforehand instead.
	var run *jobpb.RunJobResponse
	err = withRetry(ctx, o.Retry, o.Logger, "run", refusedError, func() error {
		ready := waitReady(ctx, conn, o.Retry.withDefaults().budget())
		var err error
		run, err = client.Run(ctx, &jobpb.RunJobRequest{PreparationId: prep.GetPreparationId(), RetrievalToken: prep.GetStagingSessionToken()})
		if err == nil {
			return nil
		}
		if status.Code(err) == codes.Unavailable && !ready {
			// The connection was down when Run was called: gRPC fails such
			// calls without sending them.
			return fmt.Errorf("job server %s went away before the job could be run: %w", o.Endpoint, connErr(conn, err))
		}
		if status.Code(err) == codes.Unavailable {
			return fmt.Errorf("job server %s did not confirm the run of preparation %s, which may have started anyway (list the jobs before submitting again): %w", o.Endpoint, prep.GetPreparationId(), err)
		}
		return fmt.Errorf("job server %s did not run the job: %w", o.Endpoint, err)
	})
	if err != nil {
		return nil, err
	}
	job := &Job{ID: run.GetJobId(), Name: name, Endpoint: o.Endpoint}
	o.Logger.Debug("submitted job", "job", job.ID, "name", job.Name, "endpoint", job.Endpoint)
	return job, nil
}

// endpointOf names the server behind conn for messages.
func endpointOf(conn grpc.ClientConnInterface) string {
	if t, ok := conn.(interface{ Target() string }); ok {
		return t.Target()
	}
	return "the job server"
}

// stagingTarget decides where to stage: the job server's own connection when
// the staging endpoint is the same server, else the address to dial. Job
// servers often announce their staging endpoint as localhost, which only
// means "this machine" from the server's point of view.
func stagingTarget(jobEndpoint, staging string) (target string, same bool) {
	if staging == "" {
		return jobEndpoint, true
	}
	sh, sp, err := net.SplitHostPort(staging)
	if err != nil {
		return staging, false
	}
	jh, jp, err := net.SplitHostPort(stripScheme(jobEndpoint))
	if err != nil {
		return staging, false
	}
	host := sh
	if netaddr.ThisMachine(sh) && !netaddr.ThisMachine(jh) {
		host = jh
	}
	if sp == jp && (host == jh || netaddr.ThisMachine(host) && netaddr.ThisMachine(jh)) {
		return jobEndpoint, true
	}
	return net.JoinHostPort(host, sp), false
}

func stripScheme(target string) string {
	if i := strings.Index(target, ":///"); i >= 0 {
		return target[i+4:]
	}
	return target
}

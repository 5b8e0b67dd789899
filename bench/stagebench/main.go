//go:build unix

// Command stagebench measures how fast a worker binary is staged to a Beam
// job server, by beamctl's stage.Artifacts or by the Beam SDK's
// runnerlib.Stage, and the peak resident memory of the process doing it.
//
//	stagebench -endpoint 127.0.0.1:8073 -worker PATH -method beamctl|beamctl-rehash|sdk -runs N
//
// Each run prepares a minimal pipeline whose Go environment declares the
// worker as a file artifact and times only the staging call. The worker is
// hashed first, as beamctl's submit verifies artifacts before it prepares a
// job; stage.Artifacts then trusts that digest while the file stays
// untouched. beamctl-rehash touches the worker before every run, so staging
// hashes the content as it sends it, as it does for a file modified moments
// before; the worker's modification time is restored at the end.
//
// Run each method in a process of its own: peak RSS is the process's
// high-water mark. After the runs the staged artifact is fetched back from
// the job server and compared with the worker's sha256. Sizes are in MB of
// 10^6 bytes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal/runnerlib"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/stage/stagetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

func main() {
	endpoint := flag.String("endpoint", "", "job server `HOST:PORT`")
	worker := flag.String("worker", "", "`PATH` of the file to stage")
	method := flag.String("method", "beamctl", "staging implementation: beamctl, beamctl-rehash or sdk")
	runs := flag.Int("runs", 5, "number of staging runs")
	chunk := flag.Int("chunk", 0, "chunk size in bytes for -method beamctl; 0 means stage.DefaultChunkSize")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *endpoint, *worker, *method, *runs, *chunk); err != nil {
		fmt.Fprintln(os.Stderr, "stagebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, endpoint, worker, method string, runs, chunk int) error {
	if endpoint == "" || worker == "" {
		return errors.New("-endpoint and -worker are required")
	}
	if method != "beamctl" && method != "beamctl-rehash" && method != "sdk" {
		return fmt.Errorf("unknown -method %q; use beamctl, beamctl-rehash or sdk", method)
	}
	if runs < 1 {
		return fmt.Errorf("-runs %d must be at least 1", runs)
	}
	path, err := filepath.Abs(worker)
	if err != nil {
		return err
	}
	// Hashing streams the file; it is done before staging so it is neither
	// timed nor part of the memory staging needs.
	digests := digest.NewCache()
	ds, err := digests.Sum(ctx, path)
	sum, size := ds.SHA256, ds.Size
	if err != nil {
		return err
	}
	file := stage.File{Path: path, SHA256: sum}
	if method == "beamctl-rehash" {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		defer os.Chtimes(path, st.ModTime(), st.ModTime())
	}
	artifact := beam.FileArtifact(file, beam.GoWorkerRoleURN)

	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	defer conn.Close()
	jobs := jobpb.NewJobServiceClient(conn)

	sizeMB := float64(size) / 1e6
	var total, totalCPU time.Duration
	secs := make([]float64, 0, runs)
	for i := 1; i <= runs; i++ {
		prep, err := jobs.Prepare(ctx, &jobpb.PrepareJobRequest{
			Pipeline: pipeline(artifact),
			JobName:  fmt.Sprintf("stagebench-%s-%d", method, i),
		})
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		if method == "beamctl-rehash" {
			// A file modified just now is one stage must hash as it sends.
			now := time.Now()
			if err := os.Chtimes(path, now, now); err != nil {
				return err
			}
		}
		cpu0 := cpuTime()
		d, err := stageOnce(ctx, method, prep, file, chunk, digests)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		cpu := cpuTime() - cpu0
		total += d
		totalCPU += cpu
		secs = append(secs, d.Seconds())
		fmt.Printf("method=%s run=%d size_mb=%.1f seconds=%.3f mb_per_s=%.1f cpu_s=%.3f\n", method, i, sizeMB, d.Seconds(), sizeMB/d.Seconds(), cpu.Seconds())
	}
	peak := peakRSSMiB()

	// Fetching the artifact back holds it in memory whole (prism sends it in
	// one message), so this comes after the peak was read.
	got, n, err := stagetest.Fetch(ctx, conn, artifact)
	if err != nil {
		return fmt.Errorf("verifying the staged artifact: %w", err)
	}
	if got != sum || n != size {
		return fmt.Errorf("job server holds %d bytes with sha256 %s; staged %d bytes with sha256 %s", n, got, size, sum)
	}
	mean := total.Seconds() / float64(runs)
	sort.Float64s(secs)
	fmt.Printf("method=%s runs=%d size_mb=%.1f mean_s=%.3f mb_per_s=%.1f median_s=%.3f cpu_s=%.3f peak_rss_mib=%.1f verified_sha256=%s\n",
		method, runs, sizeMB, mean, sizeMB/mean, secs[len(secs)/2], totalCPU.Seconds()/float64(runs), peak, sum[:12])
	return nil
}

// pipeline is the least a job server accepts: a Go environment that depends
// on the worker.
func pipeline(artifact *pipepb.ArtifactInformation) *pipepb.Pipeline {
	docker, err := proto.Marshal(&pipepb.DockerPayload{ContainerImage: "apache/beam_go_sdk:2.77.0"})
	if err != nil {
		panic(err)
	}
	return &pipepb.Pipeline{
		Components: &pipepb.Components{
			Environments: map[string]*pipepb.Environment{
				"go": {
					Urn:          "beam:env:docker:v1",
					Payload:      docker,
					Dependencies: []*pipepb.ArtifactInformation{artifact},
				},
			},
		},
	}
}

// stageOnce times one staging session, connection set-up included, as
// runnerlib.Stage dials its own connection.
func stageOnce(ctx context.Context, method string, prep *jobpb.PrepareJobResponse, file stage.File, chunk int, digests *digest.Cache) (time.Duration, error) {
	target := prep.GetArtifactStagingEndpoint().GetUrl()
	start := time.Now()
	switch method {
	case "sdk":
		if _, err := runnerlib.Stage(ctx, prep.GetPreparationId(), target, file.Path, prep.GetStagingSessionToken()); err != nil {
			return 0, err
		}
	default:
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return 0, err
		}
		defer cc.Close()
		err = stage.Artifacts(ctx, jobpb.NewArtifactStagingServiceClient(cc), prep.GetStagingSessionToken(),
			stage.Files{file.Path: file}, stage.Options{PreparationID: prep.GetPreparationId(), ChunkSize: chunk, Digests: digests})
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// cpuTime is the CPU time, user and system, this process has used; on a
// busy machine it measures a method's cost more steadily than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB is the process's resident-set high-water mark; Linux reports
// it in KiB.
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Maxrss) / 1024
}

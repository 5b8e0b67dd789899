package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // for the server's compressed bomb
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/testenv"
)

// hostileRunner provisions one worker artifact and serves it as chunks,
// however large, optionally compressed.
type hostileRunner struct {
	fnpb.UnimplementedProvisionServiceServer
	jobpb.UnimplementedArtifactRetrievalServiceServer
	chunks   [][]byte
	compress bool
}

func (h *hostileRunner) GetProvisionInfo(context.Context, *fnpb.GetProvisionInfoRequest) (*fnpb.GetProvisionInfoResponse, error) {
	sum := sha256.New()
	for _, c := range h.chunks {
		sum.Write(c)
	}
	payload, _ := proto.Marshal(&pipepb.ArtifactFilePayload{Path: "/submitter/worker", Sha256: hex.EncodeToString(sum.Sum(nil))})
	ep := &pipepb.ApiServiceDescriptor{Url: "127.0.0.1:1"}
	return &fnpb.GetProvisionInfoResponse{Info: &fnpb.ProvisionInfo{
		ControlEndpoint: ep, LoggingEndpoint: ep,
		Dependencies: []*pipepb.ArtifactInformation{{TypeUrn: beam.FileArtifactURN, TypePayload: payload, RoleUrn: beam.GoWorkerRoleURN}},
	}}, nil
}

func (h *hostileRunner) GetArtifact(_ *jobpb.GetArtifactRequest, stream jobpb.ArtifactRetrievalService_GetArtifactServer) error {
	if h.compress {
		_ = grpc.SetSendCompressor(stream.Context(), "gzip")
	}
	for _, c := range h.chunks {
		if err := stream.Send(&jobpb.GetArtifactResponse{Data: c}); err != nil {
			return err
		}
	}
	return nil
}

func chunks(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i)}, size)
	}
	return out
}

// TestHostileArtifactServer boots a worker (beamctl-boot, a process of its
// own so its peak memory can be read) against artifact services that send
// too much in one way or another: each is an error, in bounded memory,
// with no file written outside the staging directory and no partial file.
func TestHostileArtifactServer(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads the boot's peak RSS from Linux")
	}
	const rssBound = 80 << 20
	timeBin, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		testenv.Skip(t, testenv.Tools, "needs GNU time (apt-get install time) to read the boot's peak memory")
	}
	for _, tc := range []struct {
		name   string
		runner *hostileRunner
		args   []string
		tmpfs  bool
		want   string
	}{
		{"one 200 MiB message", &hostileRunner{chunks: chunks(1, 200<<20)}, nil, false, "larger than max"},
		{"compressed bomb", &hostileRunner{chunks: chunks(1, 200<<20), compress: true}, nil, false, "retrieve artifact"},
		{"more than the cap in total", &hostileRunner{chunks: chunks(32, 64<<10)}, []string{"--max-artifact-bytes=1048576"}, false, "exceed 1048576 bytes"},
		{"disk full", &hostileRunner{chunks: chunks(64, 64<<10)}, nil, true, "no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			semi := filepath.Join(base, "semi")
			if err := os.Mkdir(semi, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.tmpfs {
				if os.Getuid() != 0 {
					testenv.Skip(t, testenv.Root, "mounting a tmpfs needs root")
				}
				if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", semi).CombinedOutput(); err != nil {
					testenv.Skip(t, testenv.Root, "cannot mount a small tmpfs here: %v %s", err, out)
				}
				t.Cleanup(func() { exec.Command("umount", semi).Run() })
			}
			addr := serveGRPC(t, func(s *grpc.Server) {
				fnpb.RegisterProvisionServiceServer(s, tc.runner)
				jobpb.RegisterArtifactRetrievalServiceServer(s, tc.runner)
			})
			args := append([]string{"--id=hostile", "--provision_endpoint=" + addr, "--artifact_endpoint=" + addr, "--semi_persist_dir=" + semi}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// GNU time forks a process of its own for the boot: Go starts
			// children sharing this test's memory until they exec, and Linux
			// counts that memory in their peak.
			rssFile := filepath.Join(t.TempDir(), "rss")
			cmd := exec.CommandContext(ctx, timeBin, append([]string{"-f", "%M", "-o", rssFile, bootBinary(t)}, args...)...)
			cmd.Env = append(os.Environ(), "TMPDIR="+base)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("boot: %v, %q; want exit 1 and %q", err, stderr.String(), tc.want)
			}
			kib, err := os.ReadFile(rssFile)
			if err != nil {
				t.Fatal(err)
			}
			peak, err := strconv.ParseInt(strings.TrimSpace(lastLine(string(kib))), 10, 64)
			if err != nil {
				t.Fatalf("GNU time wrote %q", kib)
			}
			t.Logf("peak RSS of the boot: %.1f MiB", float64(peak)/1024)
			if peak<<10 > rssBound {
				t.Errorf("the boot's peak RSS was %d MiB, over %d MiB", peak>>10, rssBound>>20)
			}
			// Nothing beside the semi-persistent directory; nothing half
			// written in it.
			entries, _ := os.ReadDir(base)
			for _, e := range entries {
				if e.Name() != "semi" {
					t.Errorf("left in the temp directory: %s", e.Name())
				}
			}
			filepath.WalkDir(semi, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("file left in the staging directory: %s", p)
				}
				return nil
			})
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

//go:build linux

package boot_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/loopback"
)

// helperEnv makes the test binary act as a process that runs a pool with
// one worker, the script it names, until it is killed.
const helperEnv = "LOOPBACK_TEST_POOL_WORKER"

func init() {
	if script := os.Getenv(helperEnv); script != "" {
		if err := runPoolHelper(script); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func runPoolHelper(script string) error {
	content, err := os.ReadFile(script)
	if err != nil {
		return err
	}
	art, err := fileArtifactInfo(script, content, beam.GoWorkerRoleURN)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	f := &fakeRunner{deps: []*pipepb.ArtifactInformation{art}}
	fnpb.RegisterProvisionServiceServer(s, f)
	jobpb.RegisterArtifactRetrievalServiceServer(s, f)
	go s.Serve(lis)

	ctx := context.Background()
	// Killed, the helper cannot clean up: its files go where the test's do.
	p, err := boot.StartPool(ctx, boot.PoolOptions{Output: os.Stdout, WorkDir: filepath.Join(filepath.Dir(script), "workers"), LocalBinary: loopback.LocalFiles(digest.NewCache(), nil)})
	if err != nil {
		return err
	}
	ep := &pipepb.ApiServiceDescriptor{Url: lis.Addr().String()}
	if _, err := p.StartWorker(ctx, &fnpb.StartWorkerRequest{
		WorkerId: "orphan", ControlEndpoint: ep, LoggingEndpoint: ep, ProvisionEndpoint: ep, ArtifactEndpoint: ep,
	}); err != nil {
		return err
	}
	err = <-p.Failures()
	return err
}

// TestWorkersDieWithPool kills the process running a pool, as a crash or
// SIGKILL of beamctl would, and expects its worker to die with it, and the
// children the worker left running in the background too: one in its
// process group, and one in a session of its own.
func TestWorkersDieWithPool(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	sleep, setsid := lookPath(t, "sleep"), lookPath(t, "setsid")
	dir := t.TempDir()
	sleeper := filepath.Join(dir, "sleeper")
	background := filepath.Join(dir, "background")
	detached := filepath.Join(dir, "detached")
	for _, link := range []string{sleeper, background, detached} {
		if err := os.Symlink(sleep, link); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "worker")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+background+" 301 &\n"+setsid+" "+detached+" 302 &\necho ready\nexec "+sleeper+" 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	helper := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+script)
	helper.Stderr = os.Stderr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Wait()
	defer helper.Process.Kill()

	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "[worker-1] ready" {
	}
	if sc.Err() != nil {
		t.Fatalf("the helper's worker did not start (%v)", sc.Err())
	}
	// The shell may not have executed the programs yet.
	names := []string{"the worker", "its background child", "its detached child"}
	pids := make([]int, len(names))
	for deadline := time.Now().Add(10 * time.Second); slices.Contains(pids, 0); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%q are not all running: pids %v", names, pids)
		}
		for i, path := range []string{sleeper, background, detached} {
			pids[i] = workerPid(path)
		}
	}
	// A pidfd tells when a process exits, whoever reaps it.
	var pidfds []int
	for _, p := range pids {
		pidfd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			t.Skipf("pidfd_open: %v", err)
		}
		defer unix.Close(pidfd)
		// Whatever the outcome, nothing must outlive the test.
		defer unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		pidfds = append(pidfds, pidfd)
	}

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait()

	for i, pidfd := range pidfds {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, int((10 * time.Second).Milliseconds()))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatalf("poll: %v", err)
			}
			if n == 0 {
				t.Fatalf("%s (pid %d) outlived the pool's process", names[i], pids[i])
			}
			break
		}
	}
}

// workerPid finds the process whose command line holds path.
func workerPid(dir string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), dir) {
			pid, _ := strconv.Atoi(filepath.Base(p))
			return pid
		}
	}
	return 0
}

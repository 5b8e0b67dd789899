package boot_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/beam"
)

// bootHelperEnv makes the test binary act as a boot command, for pools
// that start workers through one.
const bootHelperEnv = "LOOPBACK_TEST_BOOT"

func init() {
	if os.Getenv(bootHelperEnv) == "" {
		return
	}
	fs := flag.NewFlagSet("boot", flag.ExitOnError)
	var o boot.BootOptions
	fs.StringVar(&o.ID, "id", "", "")
	fs.StringVar(&o.ProvisionEndpoint, "provision_endpoint", "", "")
	fs.StringVar(&o.ArtifactEndpoint, "artifact_endpoint", "", "")
	fs.StringVar(&o.ControlEndpoint, "control_endpoint", "", "")
	fs.StringVar(&o.LoggingEndpoint, "logging_endpoint", "", "")
	fs.StringVar(&o.SemiPersistDir, "semi_persist_dir", "", "")
	fs.Parse(os.Args[1:])
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	o.Signals, o.Stdout, o.Stderr = sigs, os.Stdout, os.Stderr
	code, err := boot.Boot(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "boot:", err)
		code = 1
	}
	os.Exit(code)
}

// stagedAs makes a runner resolve every artifact to one staged as name.
func stagedAs(name string) func([]*pipepb.ArtifactInformation) []*pipepb.ArtifactInformation {
	return func(arts []*pipepb.ArtifactInformation) []*pipepb.ArtifactInformation {
		role, _ := proto.Marshal(&pipepb.ArtifactStagingToRolePayload{StagedName: name})
		out := make([]*pipepb.ArtifactInformation, len(arts))
		for i, a := range arts {
			out[i] = &pipepb.ArtifactInformation{TypeUrn: a.GetTypeUrn(), TypePayload: a.GetTypePayload(), RoleUrn: beam.StagingToRoleURN, RolePayload: role}
		}
		return out
	}
}

func TestBoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	const id = "job-7_go"
	script := []byte("#!/bin/sh\necho \"argv $*\"\necho \"options $(cat \"$PIPELINE_OPTIONS_FILE\")\"\n" +
		"echo \"caps $RUNNER_CAPABILITIES status $STATUS_ENDPOINT\"\nexit 7\n")
	// The path is the submitter's: a booted worker never looks there.
	art := func(t *testing.T, unverified bool) *pipepb.ArtifactInformation {
		if unverified {
			return beam.FileArtifact(beam.File{Path: "/nonexistent/submitter/wc"}, beam.GoWorkerRoleURN)
		}
		return fileArtifact(t, "/nonexistent/submitter/wc", script, beam.GoWorkerRoleURN)
	}
	// A hard link where the worker is to be staged must not be written
	// through: it may name any file of this machine.
	hardLink := func(t *testing.T, base, dir string) {
		victim := filepath.Join(base, "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "staged"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(victim, filepath.Join(dir, "staged", "wc")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name            string
		resolve         func([]*pipepb.ArtifactInformation) []*pipepb.ArtifactInformation
		artifact        []byte
		noProvider      bool
		unverified      bool
		allowUnverified bool
		prepare         func(t *testing.T, base, dir string)
		wantStaged      string // the staged worker, relative to the semi-persistent directory
		wantErr         string
	}{
		{name: "worker without sha256", artifact: script, unverified: true, wantErr: "the worker binary wc declares no sha256"},
		{name: "worker without sha256, allowed", artifact: script, unverified: true, allowUnverified: true, wantStaged: "staged/wc"},
		{name: "hard link at the staged name", artifact: script, prepare: hardLink, wantStaged: "staged/wc"},
		{name: "declared name", artifact: script, wantStaged: "staged/wc"},
		{name: "runner's staged name", resolve: stagedAs("bin/go-worker"), artifact: script, wantStaged: "staged/bin/go-worker"},
		{name: "staged name escapes", resolve: stagedAs("../../x"), artifact: script, wantErr: `"../../x", outside the staging directory`},
		{name: "absolute staged name", resolve: stagedAs("/tmp/x"), artifact: script, wantErr: `"/tmp/x", outside the staging directory`},
		{name: "sha256 mismatch", artifact: []byte("#!/bin/sh\nexit 0\n"), wantErr: "does not match its sha256"},
		{name: "not retrievable", wantErr: "no such artifact"},
		{name: "no provision endpoint", noProvider: true, wantErr: "no provision endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runner := serveFake(t, &fakeRunner{deps: []*pipepb.ArtifactInformation{art(t, tt.unverified)}, artifact: tt.artifact, resolve: tt.resolve})
			base := t.TempDir()
			dir := filepath.Join(base, "sp")
			if tt.prepare != nil {
				tt.prepare(t, base, dir)
			}
			out := newOutputLog()
			c := boot.Contract{ID: id, ProvisionEndpoint: runner, ArtifactEndpoint: runner, ControlEndpoint: "control:1", LoggingEndpoint: "logging:1"}
			if tt.noProvider {
				c.ProvisionEndpoint = ""
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code, err := boot.Boot(ctx, boot.BootOptions{Contract: c, SemiPersistDir: dir, Stdout: out, Stderr: out, AllowUnverified: tt.allowUnverified})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Boot = %d, %v; want error containing %q", code, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				if _, err := os.Stat(filepath.Join(base, "x")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a file was written outside the staging directory: %v", err)
				}
				if out.String() != "" {
					t.Errorf("the worker ran:\n%s", out)
				}
				return
			}
			if err != nil || code != 7 {
				t.Fatalf("Boot = %d, %v; want the worker's exit code 7\n%s", code, err, out)
			}
			for _, want := range []string{
				"argv --worker=true --id=" + id + " --logging_endpoint=logging:1 --control_endpoint=control:1 --semi_persist_dir=" + dir + "\n",
				`options {"beam:option:go_options:v1":{"options":{"job_name":"contract"}}}` + "\n",
				"caps beam:cap:a beam:cap:b status status:1\n",
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("worker output lacks %q:\n%s", want, out)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dir, tt.wantStaged)); err != nil || string(b) != string(script) {
				t.Errorf("staged worker %s: %q, %v", tt.wantStaged, b, err)
			}
			if b, err := os.ReadFile(filepath.Join(base, "victim")); err == nil && string(b) != "precious" {
				t.Errorf("staging wrote through a hard link: the linked file now holds %q", b)
			}
			if partial, _ := filepath.Glob(filepath.Join(dir, "staged", boot.PartialPrefix+"*")); len(partial) > 0 {
				t.Errorf("partial files left behind: %q", partial)
			}
		})
	}
}

func TestStagedNames(t *testing.T) {
	given := func(name string) *pipepb.ArtifactInformation {
		role, _ := proto.Marshal(&pipepb.ArtifactStagingToRolePayload{StagedName: name})
		a := beam.FileArtifact(beam.File{Path: "/x/" + name}, beam.StagingToRoleURN)
		a.RolePayload = role
		return a
	}
	file := func(p string) *pipepb.ArtifactInformation { return beam.FileArtifact(beam.File{Path: p}, "") }
	for _, tt := range []struct {
		name string
		arts []*pipepb.ArtifactInformation
		want []string
	}{
		{"distinct", []*pipepb.ArtifactInformation{file("/a/wc"), file("/b/lib")}, []string{"wc", "lib"}},
		{"same base name", []*pipepb.ArtifactInformation{file("/a/wc"), file("/b/wc")}, []string{"wc", "1-wc"}},
		// A made-up name never takes one the runner gives, even a later one.
		{"made-up name given later", []*pipepb.ArtifactInformation{file("/a/wc"), file("/b/wc"), given("1-wc")}, []string{"wc", "2-wc", "1-wc"}},
		{"given name taken first", []*pipepb.ArtifactInformation{given("wc"), file("/a/wc")}, []string{"wc", "1-wc"}},
		{"temporary-looking name", []*pipepb.ArtifactInformation{file("/a/" + boot.PartialPrefix + "x")}, []string{"1-" + boot.PartialPrefix + "x"}},
	} {
		got, err := boot.StagedNames(tt.arts)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: stagedNames = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestBootForwardsSignals(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	script := []byte("#!/bin/sh\ntrap 'echo got TERM; exit 42' TERM\nsleep 300 &\necho ready\nwait\n")
	runner := serveFake(t, &fakeRunner{deps: []*pipepb.ArtifactInformation{fileArtifact(t, "/x/worker", script, "")}, artifact: script})
	out := newOutputLog()
	sigs := make(chan os.Signal, 1)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := boot.Boot(context.Background(), boot.BootOptions{
			Contract: boot.Contract{ID: "w", ProvisionEndpoint: runner, ArtifactEndpoint: runner, ControlEndpoint: "c:1", LoggingEndpoint: "l:1"},
			Stdout:   out, Stderr: out, Signals: sigs, Logger: debugLogger(out),
		})
		done <- result{code, err}
	}()
	out.waitFor(t, "ready\n", 30*time.Second)
	sigs <- syscall.SIGTERM
	select {
	case r := <-done:
		if r.err != nil || r.code != 42 {
			t.Errorf("Boot = %d, %v; want the worker's exit code 42", r.code, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not exit on SIGTERM")
	}
	out.waitFor(t, "got TERM\n", time.Second)
}

func TestBootInterruptedBeforeWorker(t *testing.T) {
	// A provision service that never answers holds the boot until the
	// signal.
	runner := serveFake(t, &fakeRunner{block: true})
	sigs := make(chan os.Signal, 1)
	sigs <- os.Interrupt
	_, err := boot.Boot(context.Background(), boot.BootOptions{Contract: boot.Contract{ID: "w", ProvisionEndpoint: runner}, Signals: sigs})
	if !errors.Is(err, boot.ErrBootInterrupted) {
		t.Fatalf("Boot error = %v; want ErrBootInterrupted", err)
	}
}

// startWorker asks the pool at addr for a worker as a runner would.
func startWorker(t *testing.T, ctx context.Context, client fnpb.BeamFnExternalWorkerPoolClient, id, runner string) string {
	t.Helper()
	ep := &pipepb.ApiServiceDescriptor{Url: runner}
	req := &fnpb.StartWorkerRequest{WorkerId: id, ControlEndpoint: ep, LoggingEndpoint: ep, ArtifactEndpoint: ep}
	if runner != "" {
		req.ProvisionEndpoint = ep
	}
	resp, err := client.StartWorker(ctx, req)
	if err != nil {
		t.Fatalf("StartWorker(%s): %v", id, err)
	}
	return resp.GetError()
}

func poolClient(t *testing.T, p *boot.Pool) fnpb.BeamFnExternalWorkerPoolClient {
	t.Helper()
	conn, err := grpc.NewClient(p.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return fnpb.NewBeamFnExternalWorkerPoolClient(conn)
}

func TestPoolAnswersErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	dir := t.TempDir()
	script := []byte("#!/bin/sh\necho ready\nexec sleep 300\n")
	runner := serveFake(t, &fakeRunner{deps: []*pipepb.ArtifactInformation{fileArtifact(t, "/x/worker", script, "")}, artifact: script})
	out := newOutputLog()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := boot.StartPool(ctx, boot.PoolOptions{Output: out, WorkDir: dir, AnswerErrors: true, MaxWorkers: 1, LabelByID: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := poolClient(t, p)

	if msg := startWorker(t, ctx, client, "first", runner); msg != "" {
		t.Fatalf("first StartWorker answered %q", msg)
	}
	out.waitFor(t, "[first] ready\n", 30*time.Second)
	for _, tc := range []struct{ id, runner, want string }{
		{"second", runner, "maximum of 1 workers"},
		{"first", runner, "already running"},
		{"no-endpoints", "", "no provision endpoint"},
	} {
		if msg := startWorker(t, ctx, client, tc.id, tc.runner); !strings.Contains(msg, tc.want) {
			t.Errorf("StartWorker(%s) answered %q; want %q", tc.id, msg, tc.want)
		}
	}
	// A stopped worker frees its place at once.
	if _, err := client.StopWorker(ctx, &fnpb.StopWorkerRequest{WorkerId: "first"}); err != nil {
		t.Fatal(err)
	}
	if msg := startWorker(t, ctx, client, "third", runner); msg != "" {
		t.Errorf("StartWorker after StopWorker answered %q", msg)
	}
	out.waitFor(t, "[third] ready\n", 30*time.Second)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	noFailure(t, p)
	assertNoWorkers(t, dir)
}

func TestPoolBootCommand(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	t.Setenv(bootHelperEnv, "1")
	dir := t.TempDir()
	script := []byte("#!/bin/sh\ntrap 'echo stopping; exit 0' TERM\nsleep 300 &\necho \"ready in $PWD\"\nwait\n")
	runner := serveFake(t, &fakeRunner{deps: []*pipepb.ArtifactInformation{fileArtifact(t, "/x/worker", script, "")}, artifact: script})
	out := newOutputLog()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := boot.StartPool(ctx, boot.PoolOptions{Output: out, WorkDir: dir, AnswerErrors: true, BootCommand: []string{os.Args[0]}, LabelByID: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := poolClient(t, p)
	if msg := startWorker(t, ctx, client, "w1", runner); msg != "" {
		t.Fatalf("StartWorker answered %q", msg)
	}
	out.waitFor(t, "[w1] ready", 30*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "worker-1", "staged", "worker")); err != nil {
		t.Errorf("the boot did not stage into the worker's directory: %v", err)
	}
	if _, err := client.StopWorker(ctx, &fnpb.StopWorkerRequest{WorkerId: "w1"}); err != nil {
		t.Fatal(err)
	}
	// The boot passed SIGTERM on to its worker.
	out.waitFor(t, "[w1] stopping\n", time.Second)
	noFailure(t, p)
	assertNoWorkers(t, dir)
}

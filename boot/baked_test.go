package boot_test

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/loopback"
)

func TestBootBakedWorker(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	baked := []byte("#!/bin/sh\necho baked\n")
	staged := []byte("#!/bin/sh\necho staged\n")
	extra := []byte("a file the job's DoFns read\n")
	bakedSHA, stagedSHA := sha256Hex(baked), sha256Hex(staged)
	dir := t.TempDir()
	bakedPath := filepath.Join(dir, "image-worker")
	if err := os.WriteFile(bakedPath, baked, 0o755); err != nil {
		t.Fatal(err)
	}

	// The paths are the submitter's: this machine has neither, so what
	// runs is the image's or what was fetched.
	const workerPath, extraPath = "/nonexistent/submitter/wc", "/nonexistent/submitter/data.txt"
	sameWorker := fileArtifact(t, workerPath, baked, beam.GoWorkerRoleURN)
	otherWorker := fileArtifact(t, workerPath, staged, beam.GoWorkerRoleURN)
	extraFile := fileArtifact(t, extraPath, extra, "")
	stages := map[string][]*pipepb.ArtifactInformation{
		"none":              nil,
		"same worker":       {sameWorker},
		"other worker":      {otherWorker},
		"same worker+extra": {sameWorker, extraFile},
	}
	// What the runner serves for any artifact: the one a case may fetch.
	served := map[string][]byte{"other worker": staged, "same worker+extra": extra}

	// stagedSHA is also what a job of a newer build expects: the worker it
	// stages in the "other worker" rows.
	tests := []struct {
		stages      string
		want        string // the digest the job's environment expects
		bakedSHA    string // the image's declared digest; default bakedSHA
		bakedPath   string // default bakedPath
		wantRan     string
		wantFetched []string
		wantErr     []string
	}{
		{stages: "none", wantRan: "baked"},
		{stages: "none", want: bakedSHA, wantRan: "baked"},
		{stages: "none", want: stagedSHA, wantErr: []string{bakedSHA, stagedSHA}},
		{stages: "same worker", wantRan: "baked"},
		{stages: "same worker", want: bakedSHA, wantRan: "baked"},
		{stages: "same worker", want: stagedSHA, wantErr: []string{bakedSHA, stagedSHA}},
		{stages: "other worker", wantRan: "staged", wantFetched: []string{workerPath}},
		{stages: "other worker", want: bakedSHA, wantErr: []string{digest.Short(bakedSHA), digest.Short(stagedSHA)}},
		{stages: "other worker", want: stagedSHA, wantRan: "staged", wantFetched: []string{workerPath}},
		{stages: "same worker+extra", wantRan: "baked", wantFetched: []string{extraPath}},
		{stages: "same worker+extra", want: bakedSHA, wantRan: "baked", wantFetched: []string{extraPath}},
		{stages: "same worker+extra", want: stagedSHA, wantErr: []string{bakedSHA, stagedSHA}},
		// The image's file is checked like any worker: a declared digest
		// it does not have means another binary than the one built.
		{stages: "none", bakedSHA: stagedSHA, wantErr: []string{"image's worker binary", "does not match"}},
		{stages: "same worker", bakedPath: filepath.Join(dir, "missing"), wantErr: []string{"image's worker binary", "no such file"}},
	}
	for _, tt := range tests {
		name := tt.stages + ", expects "
		switch tt.want {
		case "":
			name += "nothing"
		case bakedSHA:
			name += "the image's"
		default:
			name += "another"
		}
		switch {
		case tt.bakedSHA != "":
			name += ", image's file differs"
		case tt.bakedPath != "":
			name += ", image's file missing"
		}
		t.Run(name, func(t *testing.T) {
			f := &fakeRunner{deps: stages[tt.stages], artifact: served[tt.stages]}
			runner := serveFake(t, f)
			sp := filepath.Join(t.TempDir(), "sp")
			out, logs := newOutputLog(), newOutputLog()
			c := boot.Contract{ID: "w", ProvisionEndpoint: runner, ArtifactEndpoint: runner, ControlEndpoint: "control:1", LoggingEndpoint: "logging:1"}
			if tt.want != "" {
				c.Params = map[string]string{boot.ParamWorkerSHA256: tt.want}
			}
			b := &boot.Baked{Path: cmp.Or(tt.bakedPath, bakedPath), SHA256: cmp.Or(tt.bakedSHA, bakedSHA)}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code, err := boot.Boot(ctx, boot.BootOptions{Contract: c, Baked: b, SemiPersistDir: sp, Stdout: out, Stderr: out, Logger: debugLogger(logs)})

			if got := f.served(); !slices.Equal(got, tt.wantFetched) {
				t.Errorf("fetched %q, want %q", got, tt.wantFetched)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Boot = %d, nil; want an error naming %q\n%s", code, tt.wantErr, out)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if out.String() != "" {
					t.Errorf("a worker ran:\n%s", out)
				}
				return
			}
			if err != nil || code != 0 {
				t.Fatalf("Boot = %d, %v\n%s\n%s", code, err, out, logs)
			}
			if got := strings.TrimSpace(out.String()); got != tt.wantRan {
				t.Errorf("the worker printed %q, want %q", got, tt.wantRan)
			}
			// Being told which binary runs matters when an image's worker
			// is passed over.
			if passed := strings.Contains(logs.String(), "running it, not the image's"); passed != (tt.wantRan == "staged") {
				t.Errorf("the log says the job's worker replaced the image's: %v; want %v\n%s", passed, tt.wantRan == "staged", logs)
			}
			if slices.Contains(tt.wantFetched, extraPath) {
				if b, err := os.ReadFile(filepath.Join(sp, "staged", "data.txt")); err != nil || string(b) != string(extra) {
					t.Errorf("staged extra artifact: %q, %v", b, err)
				}
			}
		})
	}
}

func TestBakedFromEnv(t *testing.T) {
	sum := sha256Hex([]byte("worker"))
	for _, tt := range []struct {
		name    string
		env     []string
		want    *boot.Baked
		wantErr bool
	}{
		{name: "none", env: []string{"PATH=/bin", "HOME=/"}},
		{name: "both", env: []string{"PATH=/bin", boot.EnvBakedWorker + "=/ko-app/worker", boot.EnvBakedWorkerSHA256 + "=" + sum}, want: &boot.Baked{Path: "/ko-app/worker", SHA256: sum}},
		{name: "path without sha256", env: []string{boot.EnvBakedWorker + "=/ko-app/worker"}, wantErr: true},
		{name: "sha256 without path", env: []string{boot.EnvBakedWorkerSHA256 + "=" + sum}, wantErr: true},
		{name: "upper-case sha256", env: []string{boot.EnvBakedWorker + "=/w", boot.EnvBakedWorkerSHA256 + "=" + strings.ToUpper(sum)}, wantErr: true},
		{name: "short sha256", env: []string{boot.EnvBakedWorker + "=/w", boot.EnvBakedWorkerSHA256 + "=" + sum[:12]}, wantErr: true},
		{name: "prefixed sha256", env: []string{boot.EnvBakedWorker + "=/w", boot.EnvBakedWorkerSHA256 + "=sha256:" + sum}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := boot.BakedFromEnv(tt.env)
			if tt.wantErr {
				if err == nil || got != nil {
					t.Fatalf("BakedFromEnv = %+v, %v; want an error", got, err)
				}
				// The fix is to rebuild the image: the message must say
				// which variable is wrong.
				if !strings.Contains(err.Error(), boot.EnvBakedWorkerSHA256) {
					t.Errorf("error %q does not name %s", err, boot.EnvBakedWorkerSHA256)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("BakedFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestContractArgsWorkerSHA256(t *testing.T) {
	sum := sha256Hex([]byte("worker"))
	for _, tt := range []struct {
		name   string
		params map[string]string
		want   bool
	}{
		{name: "no params"},
		{name: "expected digest", params: map[string]string{boot.ParamWorkerSHA256: sum}, want: true},
		// The digest then belongs to a binary on the submitter's machine,
		// which a boot command never sees.
		{name: "local binary", params: loopback.LocalParams("/home/u/dist/wc-worker", sum)},
		{name: "empty digest", params: map[string]string{boot.ParamWorkerSHA256: ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := boot.Contract{ID: "w", ProvisionEndpoint: "p:1", ArtifactEndpoint: "a:1", ControlEndpoint: "c:1", LoggingEndpoint: "l:1", Params: tt.params}
			args := c.Args("/sp")
			wantArgs := []string{"--id=w", "--provision_endpoint=p:1", "--artifact_endpoint=a:1", "--control_endpoint=c:1", "--logging_endpoint=l:1", "--semi_persist_dir=/sp"}
			if tt.want {
				wantArgs = append(wantArgs, "--worker-sha256="+sum)
			}
			if !slices.Equal(args, wantArgs) {
				t.Errorf("Args = %q, want %q", args, wantArgs)
			}
		})
	}
}

package submit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/syncbuf"
)

var (
	wcSumOnce sync.Once
	wcSum     string
)

func wordcountSHA256(t *testing.T) string {
	t.Helper()
	wcSumOnce.Do(func() {
		var err error
		ds, err := digest.File(context.Background(), wcBin)
		wcSum = ds.SHA256
		if err != nil {
			t.Fatal(err)
		}
	})
	return wcSum
}

func captureWordcount(t *testing.T, worker, input, output string) *capture.Captured {
	t.Helper()
	c, err := capture.Capture(context.Background(), capture.Options{
		Launcher:   wcBin,
		WorkerPath: worker,
		Args:       []string{"--input=" + input, "--output=" + output},
	})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	return c
}

func TestCaptureWordcount(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	input, output := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	var stderr syncbuf.Buffer
	c, err := capture.Capture(context.Background(), capture.Options{
		Launcher:   wcBin,
		WorkerPath: wcBin,
		Args:       []string{"--input=" + input, "--output=" + output},
		JobName:    "wc-capture",
		Stderr:     &stderr,
	})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}

	if n := len(c.Pipeline.GetComponents().GetTransforms()); n < 5 {
		t.Errorf("captured pipeline has %d transforms; want wordcount's graph", n)
	}
	if c.JobName != "wc-capture" {
		t.Errorf("JobName = %q; want wc-capture", c.JobName)
	}
	goOpts := c.Options.GetFields()["beam:option:go_options:v1"].GetStructValue().GetFields()["options"].GetStructValue().GetFields()
	if got := goOpts["input"].GetStringValue(); got != input {
		t.Errorf("captured option input = %q; want %q", got, input)
	}
	if got := goOpts["output"].GetStringValue(); got != output {
		t.Errorf("captured option output = %q; want %q", got, output)
	}
	want := beam.File{Path: wcBin, SHA256: wordcountSHA256(t)}
	if c.Worker != want {
		t.Errorf("Worker = %+v; want %+v", c.Worker, want)
	}
	deps := c.Pipeline.GetComponents().GetEnvironments()["go"].GetDependencies()
	if len(deps) != 1 || deps[0].GetTypeUrn() != beam.FileArtifactURN || deps[0].GetRoleUrn() != beam.GoWorkerRoleURN {
		t.Fatalf("go environment dependencies = %v; want one file artifact with the Go worker role", deps)
	}
	if got, _ := beam.FilePayload(deps[0]); got != want {
		t.Errorf("worker artifact payload = %+v; want %+v", got, want)
	}
	// The SDK logs the job id the capture service gave it: proof the
	// launcher's output is streamed and that it reached Run.
	if !strings.Contains(stderr.String(), "capture-1") {
		t.Errorf("launcher stderr does not mention the captured job:\n%s", stderr.String())
	}
}

func TestCaptureFaults(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "hang.pids")
	tests := []struct {
		name    string
		opts    capture.Options
		wantErr []string
		check   func(t *testing.T)
	}{
		{
			name:    "launcher rejects a flag",
			opts:    capture.Options{Launcher: wcBin, Args: []string{"--no_such_flag"}},
			wantErr: []string{"submitted no pipeline: it rejected the argument -no_such_flag (exit status 2)", "flag provided but not defined: -no_such_flag"},
		},
		{
			name:    "pipeline fails during construction",
			opts:    capture.Options{Launcher: wcBin},
			wantErr: []string{"submitted no pipeline", "exit status 1", "--input and --output are required"},
		},
		{
			name:    "program never calls beamx.Run",
			opts:    capture.Options{Launcher: norunBin},
			wantErr: []string{"submitted no pipeline to beamctl: it must call flag.Parse()", "norun: constructed nothing"},
		},
		{
			name: "launcher hangs",
			opts: capture.Options{
				Launcher: hangBin,
				Timeout:  2 * time.Second,
				Env:      []string{"HANG_PIDFILE=" + pidFile},
			},
			wantErr: []string{"submitted no pipeline within 2s and was killed", "raise CaptureTimeout", "hang: waiting"},
			check: func(t *testing.T) {
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatalf("hang did not record its processes: %v", err)
				}
				for _, f := range strings.Fields(string(b)) {
					pid, _ := strconv.Atoi(f)
					waitGone(t, pid)
				}
			},
		},
		{
			name:    "user sets a flag beamctl owns",
			opts:    capture.Options{Launcher: wcBin, Args: []string{"--input", "x", "-endpoint", "localhost:8099"}},
			wantErr: []string{"the pipeline argument -endpoint is beamctl's to set"},
		},
		{
			name:    "no such launcher",
			opts:    capture.Options{Launcher: filepath.Join(dir, "missing")},
			wantErr: []string{"starting launcher"},
		},
		{
			name:    "no such worker",
			opts:    capture.Options{Launcher: wcBin, WorkerPath: filepath.Join(dir, "missing")},
			wantErr: []string{"worker binary", "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.WorkerPath == "" {
				tt.opts.WorkerPath = wcBin
			}
			start := time.Now()
			_, err := capture.Capture(context.Background(), tt.opts)
			if err == nil {
				t.Fatal("Capture succeeded; want an error")
			}
			t.Logf("error:\n%v", err)
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("Capture took %v", d)
			}
			var le *capture.LauncherError
			if strings.Contains(tt.wantErr[0], "submitted") && !errors.As(err, &le) {
				t.Errorf("error %T is not a *LauncherError", err)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

// waitGone waits until pid has exited (a zombie awaiting its reaper counts),
// polling because the kill is delivered asynchronously.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d still running after Capture returned: %s", pid, b)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

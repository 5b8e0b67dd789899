package launch_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

func TestValidate(t *testing.T) {
	b := &build.Options{}
	df := &launch.Dataflow{Project: "p", Region: "r", StagingLocation: "gs://b/s"}
	arm64 := build.Platform{OS: "linux", Arch: "arm64"}
	for _, tt := range []struct {
		name string
		spec launch.Spec
		want string // "" for valid
	}{
		{"embedded", launch.Spec{Build: b}, ""},
		{"remote docker", launch.Spec{Dist: "dist", Endpoint: "localhost:8099"}, ""},
		{"neither build nor dist", launch.Spec{}, "a launch needs either {Build} or {Dist}"},
		{"both", launch.Spec{Build: b, Dist: "dist"}, "a launch needs either {Build} or {Dist}"},
		{"negative capture timeout", launch.Spec{Build: b, CaptureTimeout: -time.Second}, "{CaptureTimeout} -1s is negative"},
		{"zero capture timeout takes the default", launch.Spec{Build: b, CaptureTimeout: 0}, ""},
		{"negative connect timeout", launch.Spec{Build: b, Dial: submit.DialOptions{ConnectTimeout: -time.Second}}, "{ConnectTimeout} -1s is negative"},
		{"bad endpoint", launch.Spec{Build: b, Endpoint: "host:port:x"}, "host:port:x"},
		{"unknown environment", launch.Spec{Build: b, Endpoint: "localhost:1", Environment: "kubernetes"}, `{Environment} "kubernetes" is not one of`},
		{"docker without job server", launch.Spec{Build: b, Environment: launch.Docker}, "{Environment} docker needs a job server: give {Endpoint}"},
		{"external without address", launch.Spec{Build: b, Endpoint: "localhost:1", Environment: launch.External}, "give {EnvironmentConfig} HOST:PORT"},
		{"detach on the embedded runner", launch.Spec{Build: b, Detach: true}, "{Detach} needs {Endpoint}"},
		{"loopback with a config", launch.Spec{Build: b, EnvironmentConfig: "x"}, "{EnvironmentConfig} has no meaning"},
		{"image, docker", launch.Spec{Dist: "dist", Endpoint: "localhost:1", Image: &launch.ImageSpec{Ref: "r/wc"}}, ""},
		{"image, external", launch.Spec{Dist: "dist", Endpoint: "localhost:1", Environment: launch.External, EnvironmentConfig: "localhost:50000", Image: &launch.ImageSpec{Ref: "r/wc"}}, ""},
		{"image, process", launch.Spec{Dist: "dist", Endpoint: "localhost:1", Environment: launch.Process, Image: &launch.ImageSpec{Ref: "r/wc"}}, ""},
		{"image on the embedded runner", launch.Spec{Build: b, Image: &launch.ImageSpec{Ref: "r/wc"}}, "{Image} needs a job server"},
		{"image, loopback", launch.Spec{Dist: "dist", Endpoint: "localhost:1", Environment: launch.Loopback, Image: &launch.ImageSpec{Ref: "r/wc"}}, "{Image} has no meaning for {Environment} loopback"},
		{"image and docker config", launch.Spec{Dist: "dist", Endpoint: "localhost:1", EnvironmentConfig: "other:1", Image: &launch.ImageSpec{Ref: "r/wc"}}, "{Image} and {EnvironmentConfig} both name"},
		{"empty image", launch.Spec{Dist: "dist", Endpoint: "localhost:1", Image: &launch.ImageSpec{}}, "{Image} is empty"},
		{"dataflow", launch.Spec{Dist: "dist", Dataflow: df, Image: &launch.ImageSpec{Ref: "r/wc"}}, ""},
		{"dataflow arm64", launch.Spec{Dist: "dist", Target: arm64, Dataflow: &launch.Dataflow{Project: "p", Region: "r", StagingLocation: "gs://b", MachineType: "t2a-standard-1"}}, ""},
		{"dataflow and an endpoint", launch.Spec{Dist: "dist", Endpoint: "localhost:1", Dataflow: df}, "{Runner} dataflow and {Endpoint} both"},
		{"dataflow, external", launch.Spec{Dist: "dist", Environment: launch.External, Dataflow: df}, "not {Environment} external"},
		{"dataflow debug", launch.Spec{Build: b, Debug: &launch.Debug{}, Dataflow: df}, "{Debug} runs workers on this machine"},
		{"dataflow without project", launch.Spec{Dist: "dist", Dataflow: &launch.Dataflow{Region: "r", StagingLocation: "gs://b"}}, "Dataflow needs {Project}"},
		{"dataflow staging not gs", launch.Spec{Dist: "dist", Dataflow: &launch.Dataflow{Project: "p", Region: "r", StagingLocation: "/tmp/s"}}, `{StagingLocation} "/tmp/s" is not a gs:// path`},
		{"dataflow arm64 on x86", launch.Spec{Dist: "dist", Target: arm64, Dataflow: &launch.Dataflow{Project: "p", Region: "r", StagingLocation: "gs://b", MachineType: "n2-standard-2"}}, "{Target} linux/arm64 does not run on Dataflow machine type n2-standard-2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			p, ok := problem.As(err)
			if !ok || !p.Usage {
				t.Fatalf("Validate = %v; want a usage problem", err)
			}
			if got := p.Render(func(s string) string { return "{" + s + "}" }); !strings.Contains(got, tt.want) {
				t.Errorf("Validate = %q; want it to contain %q", got, tt.want)
			}
		})
	}
}

// TestRunHashesEachFileOnce runs wordcount on the embedded runner, built
// and then from its output directory, and counts the bytes of each binary
// the run's digest cache hashed: the build's own hash, or the check of a
// DIST, is the only one; capture, staging and the local pool reuse it.
func TestRunHashesEachFileOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a pipeline")
	}
	if runtime.GOOS != "linux" {
		t.Skip("workers run on linux only")
	}
	dir := t.TempDir()
	input := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(input, []byte("the quick fox\nthe lazy dog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "dist")
	run := func(t *testing.T, s launch.Spec) (*launch.Result, *digest.Cache) {
		t.Helper()
		output := filepath.Join(t.TempDir(), "counts.txt")
		s.Args = []string{"--input=" + input, "--output=" + output}
		var workers bytes.Buffer
		s.WorkerOutput = &workers
		digests := digest.NewCache()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		res, err := launch.Run(ctx, s, launch.Deps{Digests: digests}, launch.Observer{})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Outcome != launch.Done {
			t.Fatalf("job ended %v (%v)\nworkers:\n%s", res.State, res.Err, workers.String())
		}
		b, err := os.ReadFile(output)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSpace(string(b)), "\n")
		slices.Sort(got)
		if want := []string{"dog: 1", "fox: 1", "lazy: 1", "quick: 1", "the: 2"}; !slices.Equal(got, want) {
			t.Errorf("counts = %q; want %q", got, want)
		}
		return res, digests
	}

	var m *build.Manifest
	t.Run("built", func(t *testing.T) {
		res, digests := run(t, launch.Spec{Build: &build.Options{
			Package:  "./examples/wordcount",
			WorkDir:  wd,
			Targets:  []build.Platform{build.HostPlatform()},
			OutDir:   outDir,
			CacheDir: filepath.Join(dir, "cache"),
		}})
		m = res.Manifest
		for _, b := range m.Binaries {
			path := filepath.Join(outDir, b.File)
			if got := digests.Hashed(path); got > b.Size {
				t.Errorf("%s: %d bytes hashed, more than its %d", b.File, got, b.Size)
			}
		}
	})
	if m == nil {
		t.FailNow()
	}
	t.Run("from dist", func(t *testing.T) {
		_, digests := run(t, launch.Spec{Dist: outDir})
		for _, b := range m.Binaries {
			path := filepath.Join(outDir, b.File)
			// Checking DIST against its manifest hashes each binary once.
			if got := digests.Hashed(path); got != b.Size {
				t.Errorf("%s: %d bytes hashed, want exactly its %d", b.File, got, b.Size)
			}
		}
	})
}

package launch_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/launch"
)

// TestCapture captures with the build and the launcher's run faked: the
// capture gets the binaries built, starts nothing else, and refuses what
// would start a job.
func TestCapture(t *testing.T) {
	// No worker for this machine can run: a capture runs none.
	foreign := build.Platform{OS: "plan9", Arch: "amd64"}
	for _, tc := range []struct {
		name string
		spec func(*launch.Spec)
		want string
	}{
		{"foreign target", func(*launch.Spec) {}, ""},
		{"endpoint", func(s *launch.Spec) { s.Endpoint = "localhost:8099" }, "a capture starts no job"},
		{"dataflow", func(s *launch.Spec) { s.Dataflow = &launch.Dataflow{} }, "drop Runner"},
		{"reserved argument", func(s *launch.Spec) { s.Args = []string{"--runner=direct"} }, "beamctl's to set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			var got capture.Options
			deps := launch.Deps{
				Build: func(_ context.Context, o build.Options) (*build.Manifest, error) {
					return &build.Manifest{Binaries: []build.Binary{
						{Role: build.RoleLauncher, Platform: build.HostPlatform(), File: "p-launcher"},
						{Role: build.RoleWorker, Platform: o.Targets[0], File: "p-worker"},
					}}, nil
				},
				Capture: func(_ context.Context, o capture.Options) (*capture.Captured, error) {
					got = o
					return &capture.Captured{Pipeline: &pipepb.Pipeline{}}, nil
				},
				StartRunner: func(context.Context, embeddedrunner.Options) (launch.Runner, error) {
					t.Error("a capture started the embedded runner")
					return nil, context.Canceled
				},
			}
			s := launch.Spec{Build: &build.Options{Targets: []build.Platform{foreign}, OutDir: out}, Args: []string{"--input=x"}}
			tc.spec(&s)
			c, err := launch.Capture(context.Background(), s, deps, launch.Observer{})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Launcher != filepath.Join(out, "p-launcher") || got.WorkerPath != filepath.Join(out, "p-worker") || got.Args[0] != "--input=x" {
				t.Errorf("captured with %+v", got)
			}
			if c.Manifest == nil || c.Pipeline == nil {
				t.Errorf("capture returned %+v", c)
			}
		})
	}
}

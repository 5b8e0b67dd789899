package main

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/beamctl/beamctl/launch"
)

// TestStageSidecar pushes a worker image with --emit sidecar and decodes
// the spec strictly as a Kubernetes container: a field Kubernetes does not
// know, or a value of the wrong type, fails the decode. The spec must name
// the pushed image by digest and run boot as a pool that a runner of
// another uid in the pod may use.
func TestStageSidecar(t *testing.T) {
	t.Parallel()
	// A copy: staging records the image in the DIST's manifest.
	dist := copyDist(t, bootDist(t))
	reg := registryHost(t, nil)
	tests := []struct {
		name string
		// spec stages and returns the image and the sidecar spec as the
		// output carries them.
		spec func(t *testing.T) (image, spec string)
	}{
		{"json", func(t *testing.T) (string, string) {
			s := stageImage(t, dist, "--image", reg+"/wc:json", "--emit", "sidecar")
			return s.Image, s.Sidecar
		}},
		{"text", func(t *testing.T) (string, string) {
			r := beamctl(t, "stage", dist, "--image", reg+"/wc:text", "--emit", "sidecar")
			if r.code != 0 {
				t.Fatalf("stage: exit %d\n%s", r.code, r.stderr)
			}
			image, spec, ok := strings.Cut(r.stdout, "\n---\n")
			if !ok {
				t.Fatalf("stdout has no YAML document after the image:\n%s", r.stdout)
			}
			return image, spec
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			image, spec := tt.spec(t)
			if !strings.HasPrefix(image, reg+"/wc@sha256:") {
				t.Fatalf("image %q is not the pushed one by digest", image)
			}
			var c corev1.Container
			if err := yaml.UnmarshalStrict([]byte(spec), &c); err != nil {
				t.Fatalf("the sidecar spec is not a Kubernetes container: %v\n%s", err, spec)
			}
			if c.Image != image {
				t.Errorf("sidecar image %q, want the pushed %q", c.Image, image)
			}
			if !slices.Equal(c.Args, launch.SidecarArgs) || len(c.Command) != 0 {
				t.Errorf("sidecar command %q args %q, want the image's entrypoint with %q", c.Command, c.Args, launch.SidecarArgs)
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != launch.SidecarPort {
				t.Errorf("sidecar ports %+v, want %d", c.Ports, launch.SidecarPort)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("sidecar resources %+v: want a placeholder for requests and limits", c.Resources)
			}
			if !strings.Contains(spec, "--environment external --environment-config localhost:50000") {
				t.Errorf("the spec does not say which environment jobs must use:\n%s", spec)
			}
		})
	}
}

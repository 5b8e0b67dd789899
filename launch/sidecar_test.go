package launch

import (
	"strings"
	"testing"
)

// TestSidecarYAMLNeedsDigest: a sidecar names its image by digest only,
// since a tag can move under a running deployment.
func TestSidecarYAMLNeedsDigest(t *testing.T) {
	digest := "registry.example.com/wc@sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		image   string
		wantErr string
	}{
		{digest, ""},
		{"registry.example.com/wc:v1", "a sidecar needs the image by digest"},
		{"registry.example.com/wc", "a sidecar needs the image by digest"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			y, err := SidecarYAML(tt.image)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			case tt.wantErr == "" && !strings.Contains(y, `image: "`+tt.image+`"`):
				t.Errorf("spec does not name %s:\n%s", tt.image, y)
			}
		})
	}
}

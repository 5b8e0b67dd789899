package boot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/internal/digest"
)

func TestLocalFiles(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "worker")
	if err := os.WriteFile(bin, []byte("worker bytes"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("worker bytes"))
	good := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		params  map[string]string
		want    string
		wantErr string
	}{
		{name: "no parameters", params: nil, want: ""},
		{name: "matching", params: LocalParams(bin, good), want: bin},
		{name: "changed since submitted", params: LocalParams(bin, strings.Repeat("0", 64)), wantErr: "does not match the pipeline's sha256"},
		{name: "no sha256", params: map[string]string{ParamWorkerBinary: bin}, wantErr: "comes without its sha256"},
		{name: "missing file", params: LocalParams(bin+"-gone", good), wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LocalFiles(digest.NewCache(), nil)(context.Background(), Contract{Params: tc.params}, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LocalFiles error = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("LocalFiles = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

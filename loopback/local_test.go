package loopback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/proc"
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
		{name: "no sha256", params: map[string]string{boot.ParamWorkerBinary: bin}, wantErr: "comes without its sha256"},
		{name: "missing file", params: LocalParams(bin+"-gone", good), wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LocalFiles(digest.NewCache(), nil)(context.Background(), boot.Contract{Params: tc.params}, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LocalFiles error = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			name := ""
			if got != nil {
				name = got.Name()
				got.Close()
			}
			if err != nil || name != tc.want {
				t.Fatalf("LocalFiles = %q, %v; want %q", name, err, tc.want)
			}
		})
	}
}

// TestLocalFilesRunsWhatWasChecked swaps another program in at the binary's
// path after LocalFiles checked it: the worker still runs the checked one.
func TestLocalFilesRunsWhatWasChecked(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("runs programs from /proc/self/fd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	checked := []byte("#!/bin/sh\necho checked\n")
	if err := os.WriteFile(bin, checked, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(checked)
	f, err := LocalFiles(digest.NewCache(), nil)(context.Background(), boot.Contract{Params: LocalParams(bin, hex.EncodeToString(sum[:]))}, nil)
	if err != nil || f == nil {
		t.Fatalf("LocalFiles = %v, %v", f, err)
	}
	defer f.Close()

	swapped := filepath.Join(dir, "swapped")
	if err := os.WriteFile(swapped, []byte("#!/bin/sh\necho swapped\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(swapped, bin); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res, err := proc.Run(context.Background(), proc.Cmd{Argv: []string{"/proc/self/fd/3"}, Stdout: &out, ExtraFiles: []*os.File{f}}, proc.Options{})
	if err != nil || res.Err != nil {
		t.Fatalf("run: %v, %v", err, res.Err)
	}
	if out.String() != "checked\n" {
		t.Errorf("the worker printed %q; want the checked program's %q", out.String(), "checked\n")
	}
}

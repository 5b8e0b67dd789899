package wrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFindEmulator(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"qemu-aarch64-static", "qemu-riscv64"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	look := func(dir string) func(string) (string, error) {
		return func(name string) (string, error) {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p, nil
			}
			return "", exec.ErrNotFound
		}
	}
	binfmt := func(entries map[string]string) string {
		d := t.TempDir()
		for name, content := range entries {
			if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	empty := t.TempDir()

	tests := []struct {
		name         string
		goos, goarch string
		host         string
		path         string
		binfmt       string
		want         []string
		wantErr      []string
	}{
		{name: "native", goos: "linux", goarch: "amd64", host: "linux/amd64", path: empty, binfmt: empty},
		{name: "static qemu on PATH", goos: "linux", goarch: "arm64", host: "linux/amd64", path: bin, binfmt: empty,
			want: []string{filepath.Join(bin, "qemu-aarch64-static")}},
		{name: "dynamic qemu on PATH", goos: "linux", goarch: "riscv64", host: "linux/amd64", path: bin, binfmt: empty,
			want: []string{filepath.Join(bin, "qemu-riscv64")}},
		{name: "amd64 on arm64", goos: "linux", goarch: "amd64", host: "linux/arm64", path: empty, binfmt: empty,
			wantErr: []string{"cannot run linux/amd64 workers on this linux/arm64 machine", "apt-get install qemu-user-static"}},
		{name: "registered binfmt handler", goos: "linux", goarch: "arm64", host: "linux/amd64", path: empty,
			binfmt: binfmt(map[string]string{"status": "enabled\n", "qemu-aarch64": "enabled\ninterpreter /usr/bin/qemu-aarch64\n"})},
		{name: "disabled binfmt handler", goos: "linux", goarch: "arm64", host: "linux/amd64", path: empty,
			binfmt:  binfmt(map[string]string{"status": "enabled\n", "qemu-aarch64": "disabled\n"}),
			wantErr: []string{"cannot run linux/arm64 workers on this linux/amd64 machine: install qemu-user (apt-get install qemu-user-static)"}},
		{name: "nothing installed", goos: "linux", goarch: "arm64", host: "linux/amd64", path: empty, binfmt: empty,
			wantErr: []string{"cannot run linux/arm64 workers on this linux/amd64 machine: install qemu-user (apt-get install qemu-user-static)"}},
		{name: "other OS", goos: "darwin", goarch: "arm64", host: "linux/amd64", path: bin, binfmt: empty,
			wantErr: []string{"cannot run darwin/arm64 workers on this linux/amd64 machine: build the worker for linux/amd64"}},
		{name: "not on linux", goos: "linux", goarch: "arm64", host: "darwin/arm64", path: bin, binfmt: empty,
			wantErr: []string{"cannot run linux/arm64 workers on this darwin/arm64 machine: build the worker for darwin/arm64"}},
		{name: "unknown arch", goos: "linux", goarch: "wasm", host: "linux/amd64", path: bin, binfmt: empty,
			wantErr: []string{"does not emulate wasm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostOS, hostArch, _ := strings.Cut(tt.host, "/")
			got, err := findEmulator(tt.goos, tt.goarch, hostOS, hostArch, look(tt.path), tt.binfmt)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Emulator itself searches PATH.
func TestEmulatorSearchesPath(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH == "arm64" {
		t.Skip("needs a linux host other than arm64")
	}
	bin := t.TempDir()
	qemu := filepath.Join(bin, "qemu-aarch64-static")
	if err := os.WriteFile(qemu, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	got, err := Emulator("linux", "arm64")
	if err != nil || len(got) != 1 || got[0] != qemu {
		t.Fatalf("Emulator = %q, %v; want [%s]", got, err, qemu)
	}
	if got, err := Emulator(runtime.GOOS, runtime.GOARCH); got != nil || err != nil {
		t.Fatalf("native Emulator = %q, %v; want nil, nil", got, err)
	}
}

func TestBinaryPlatform(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		goos, goarch, err := BinaryPlatform(self)
		if err != nil || goos != "linux" || goarch != runtime.GOARCH {
			t.Errorf("test binary: %s/%s, %v; want linux/%s", goos, goarch, err, runtime.GOARCH)
		}
	}
	if _, _, err := BinaryPlatform(script); err != ErrNotELF {
		t.Errorf("script: %v, want ErrNotELF", err)
	}
	if _, _, err := BinaryPlatform(filepath.Join(t.TempDir(), "missing")); err == nil || err == ErrNotELF {
		t.Errorf("missing file: %v, want a read error", err)
	}
}

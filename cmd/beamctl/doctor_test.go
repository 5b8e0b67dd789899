package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/wrap"
)

// doctorJSON runs doctor with --output json and returns the results by
// check name, and the exit code.
func doctorJSON(t *testing.T, args ...string) (map[string]check.Result, int) {
	t.Helper()
	r := beamctl(t, append([]string{"doctor", "--output", "json"}, args...)...)
	var rs []check.Result
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatalf("doctor %v: exit %d, stdout %q: %v\n%s", args, r.code, r.stdout, err, r.stderr)
	}
	out := map[string]check.Result{}
	for _, c := range rs {
		if _, twice := out[c.Check]; twice {
			t.Errorf("doctor %v checks %s twice", args, c.Check)
		}
		out[c.Check] = c
	}
	return out, r.code
}

// pipelineModule writes a Beam pipeline module with the given go
// directive and Beam version.
func pipelineModule(t *testing.T, goVersion, beamVersion string) string {
	t.Helper()
	dir := t.TempDir()
	mod := "module example.com/doc\n\ngo " + goVersion + "\n\nrequire github.com/apache/beam/sdks/v2 " + beamVersion + "\n"
	src := "package main\n\nimport \"github.com/apache/beam/sdks/v2/go/pkg/beam\"\n\nfunc main() { beam.Init() }\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDoctor makes each failing setup for real and checks the line doctor
// gives it, then a setup where everything passes.
func TestDoctor(t *testing.T) {
	flink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"refresh-interval":3000,"flink-version":"1.18.1"}`))
	}))
	defer flink.Close()
	unauthorized := unauthorizedRegistry(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	goDir := filepath.Dir(mustLook(t, "go"))

	for _, tt := range []struct {
		name   string
		env    map[string]string
		args   []string
		check  string
		status check.Status
		want   string
	}{
		{"no go", map[string]string{"PATH": t.TempDir()}, nil, "go toolchain", check.Fail, "install Go"},
		{"go directive newer than the toolchain", map[string]string{"GOTOOLCHAIN": "local"}, []string{pipelineModule(t, "1.99.0", "v2.77.0")}, "go version", check.Fail, "install Go 1.99.0 or newer, or set GOTOOLCHAIN=auto"},
		{"beam older than tested", map[string]string{"GOPROXY": "off", "GOFLAGS": "-mod=mod"}, []string{pipelineModule(t, "1.26.0", "v2.50.0")}, "beam sdk", check.Warn, "older than v2.60.0, the oldest beamctl is tested with"},
		{"beam newer than the runner", map[string]string{"GOPROXY": "off", "GOFLAGS": "-mod=mod"}, []string{pipelineModule(t, "1.26.0", "v2.99.0")}, "beam sdk", check.Warn, "newer than the embedded runner"},
		{"modules missing with the proxy off", map[string]string{"GOPROXY": "off", "GOFLAGS": "-mod=mod"}, []string{pipelineModule(t, "1.26.0", "v2.50.0")}, "modules", check.Fail, "set GOPROXY"},
		{"no qemu for arm64", map[string]string{"PATH": goDir}, []string{"--target", "linux/arm64"}, "target linux/arm64", check.Fail, "apt-get install qemu-user-static"},
		{"unknown target", nil, []string{"--target", "linux/sparc"}, "target linux/sparc", check.Fail, "did you mean"},
		{"32-bit target", nil, []string{"--target", "linux/arm/v7"}, "target linux/arm/v7", check.Fail, "64-bit Linux only: use linux/arm64"},
		{"host named twice", nil, []string{"--target", "host," + runtime.GOOS + "/" + runtime.GOARCH}, "target " + runtime.GOOS + "/" + runtime.GOARCH, check.OK, "natively"},
		{"flink rest port", nil, []string{"--endpoint", strings.TrimPrefix(flink.URL, "http://"), "--connect-timeout", "2s"}, "endpoint", check.Fail, "Flink's REST API"},
		{"nothing at the endpoint", nil, []string{"--endpoint", "127.0.0.1:1", "--connect-timeout", "1s"}, "endpoint", check.Fail, "cannot reach job server at 127.0.0.1:1"},
		{"malformed image", nil, []string{"--image", "Bad Ref"}, "image", check.Fail, "registry.example.com/team/pipeline:v1, in --image"},
		{"registry unreachable", nil, []string{"--image", "127.0.0.1:1/wc"}, "registry push", check.Fail, "is unreachable"},
		{"registry wants credentials", nil, []string{"--image", unauthorized + "/wc"}, "registry push", check.Fail, "log in with `docker login " + unauthorized + "`"},
		{"no credentials", nil, []string{"--image", unauthorized + "/wc"}, "registry credentials", check.Warn, "docker login"},
		{"pipeline with a mistake", nil, []string{"../../vet/testdata/bad/anonymousfn"}, "pipeline checks", check.Fail, "3 mistakes that would reach the workers, first ../../vet/testdata/bad/anonymousfn/main.go:27:25: an anonymous function"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.check == "target linux/arm64" {
				if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err == nil {
					t.Skip("a binfmt_misc handler runs arm64 binaries here without qemu on PATH")
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			rs, code := doctorJSON(t, tt.args...)
			r, ok := rs[tt.check]
			if !ok {
				t.Fatalf("no %q check in %+v", tt.check, rs)
			}
			if r.Status != tt.status || !strings.Contains(r.Detail+" "+r.Fix, tt.want) {
				t.Errorf("%s: %+v; want %s and %q", tt.check, r, tt.status, tt.want)
			}
			if wantCode := map[bool]int{true: exitFailure, false: 0}[tt.status == check.Fail]; tt.status == check.Fail && code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
		})
	}

	t.Run("all well", func(t *testing.T) {
		prism := startPrism(t)
		reg := registryHost(t, nil)
		rs, code := doctorJSON(t, "../../examples/linestats", "--target", "host", "--endpoint", prism.Endpoint, "--image", reg+"/wc")
		for name, r := range rs {
			if r.Status == check.Fail {
				t.Errorf("%s failed: %+v", name, r)
			}
		}
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		for _, name := range []string{"go toolchain", "pipeline", "go version", "modules", "beam sdk", "pipeline checks", "cache directory", "endpoint", "registry push", "embedded runner"} {
			if rs[name].Status != check.OK {
				t.Errorf("%s: %+v, want ok", name, rs[name])
			}
		}
	})
}

func mustLook(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDoctorDelve checks the debugger check against the pinned Delve, an
// old one, and none.
func TestDoctorDelve(t *testing.T) {
	old := filepath.Join(t.TempDir(), "dlv")
	// Only the version answer matters to the check: a stand-in gives an old one.
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'Delve Debugger'\necho 'Version: 1.20.0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		dlv    string
		path   string
		status check.Status
		want   string
	}{
		{"pinned", dlvBinary(t), "", check.OK, wrap.DelveVersion},
		{"old", old, "", check.Warn, "older than " + wrap.DelveVersion},
		{"missing", "", t.TempDir(), check.Fail, wrap.DelveInstall},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			args := []string{"--debug"}
			if tt.dlv != "" {
				args = append(args, "--dlv", tt.dlv)
			}
			rs, _ := doctorJSON(t, args...)
			if r := rs["delve"]; r.Status != tt.status || !strings.Contains(r.Detail+" "+r.Fix, tt.want) {
				t.Errorf("delve: %+v; want %s and %q", r, tt.status, tt.want)
			}
		})
	}
}

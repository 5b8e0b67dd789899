package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/beamctl/beamctl/build"
)

// bootDist is wordcount built for this machine with beamctl-boot.
func bootDist(t *testing.T) string { return bootDistOut.get(t, "dist-wordcount-boot", "--boot") }

// registryHost serves go-containerregistry's in-process registry behind
// handler h, which may inject faults.
func registryHost(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h := registry.New()
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// unauthorizedRegistry answers every request as a registry that wants
// credentials it was not given.
func unauthorizedRegistry(t *testing.T) string {
	return registryHost(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		})
	})
}

// TestStageBadInput checks that each mistake gives one line naming the
// problem and the fix, the documented exit code, and no image.
func TestStageBadInput(t *testing.T) {
	t.Parallel()
	dist := bootDist(t)
	reg := registryHost(t, nil)
	s390x, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "s390x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustParse(t, reg+"/base:s390x"), s390x); err != nil {
		t.Fatal(err)
	}
	unauthorized := unauthorizedRegistry(t)
	// A registry with a certificate nobody trusts, on a loopback address
	// that is reached over TLS.
	lis, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	untrusted := httptest.NewUnstartedServer(registry.New())
	untrusted.Listener = lis
	untrusted.StartTLS()
	defer untrusted.Close()
	tlsHost := lis.Addr().String()
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "notes.txt"), []byte("mine"), 0o644)
	host := build.HostPlatform().String()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no image", []string{dist}, exitUsage, "stage needs --image REPO[:TAG]"},
		{"malformed reference", []string{dist, "--image", "Registry.example/UPPER case"}, exitUsage, `image reference "Registry.example/UPPER case" is malformed`},
		{"digest to push to", []string{dist, "--image", reg + "/wc@sha256:" + strings.Repeat("a", 64)}, exitUsage, "has a digest"},
		{"dist without boot", []string{builtDist(t), "--image", reg + "/wc"}, exitUsage, "has no beamctl-boot for " + host + ": build the pipeline with beamctl build --boot"},
		{"dist without the target", []string{dist, "--image", reg + "/wc", "--target", "linux/riscv64"}, exitUsage, "has no worker for linux/riscv64"},
		{"layout dir not empty", []string{dist, "--image", "wc:v1", "--oci-layout", notLayout}, exitUsage, "is not empty and not an OCI layout"},
		{"tarball of two", []string{dist, "--image", "wc:v1", "--tarball", filepath.Join(t.TempDir(), "wc.tar"), "--oci-layout", t.TempDir()}, exitUsage, "--oci-layout and --tarball both given: choose one of them"},
		{"registry unreachable", []string{dist, "--image", "127.0.0.1:1/wc"}, exitFailure, "registry 127.0.0.1:1 is unreachable"},
		{"plain http beyond this machine", []string{dist, "--image", "10.255.255.1:5000/wc"}, exitFailure, "would be reached over plain HTTP"},
		{"unauthorized", []string{dist, "--image", unauthorized + "/wc"}, exitFailure, "refused access (401 Unauthorized): log in with `docker login " + unauthorized + "`"},
		{"untrusted certificate", []string{dist, "--image", tlsHost + "/wc"}, exitFailure, "registry " + tlsHost + " failed TLS"},
		{"base without the platform", []string{dist, "--image", reg + "/wc", "--base", reg + "/base:s390x"}, exitUsage, "is for linux/s390x only, not " + host},
		{"unknown emit", []string{dist, "--image", reg + "/wc", "--emit", "pod"}, exitUsage, `--emit "pod" is not known: give --emit sidecar`},
		{"bad label", []string{dist, "--image", reg + "/wc", "--label", "novalue"}, exitUsage, `--label "novalue" is not KEY=VALUE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := beamctl(t, append([]string{"stage"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one:\n%s", n+1, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	if m, err := build.ReadManifest(dist); err != nil || m.Image != nil {
		t.Errorf("the manifest records an image after failures: %+v, %v", m.Image, err)
	}
	if _, err := remote.Head(mustParse(t, reg+"/wc:latest")); err == nil {
		t.Error("a failed stage left a tag")
	}
}

// TestStageInterrupted interrupts a push while a blob is being uploaded:
// exit 130, and no tag points at the partial image.
func TestStageInterrupted(t *testing.T) {
	t.Parallel()
	dist := bootDist(t)
	uploading := make(chan struct{})
	var once sync.Once
	reg := registryHost(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Method != http.MethodPost {
				once.Do(func() { close(uploading) })
				// The server notices the client going away only once the
				// body is read.
				io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, beamctlBinary(t), "stage", dist, "--image", reg+"/wc:v1")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	stderr := startStderr(t, cmd)
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
		close(done)
	}()
	select {
	case <-uploading:
	case <-ctx.Done():
		t.Fatal("no upload started")
	}
	cmd.Process.Signal(syscall.SIGINT)
	<-done
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit %d (%v), want %d\n%s", code, err, exitInterrupted, out.String())
	}
	if _, err := remote.Head(mustParse(t, reg+"/wc:v1")); err == nil {
		t.Error("the interrupted push left the tag")
	}
	if _, err := name.NewTag(reg + "/wc:v1"); err != nil {
		t.Fatal(err)
	}
}

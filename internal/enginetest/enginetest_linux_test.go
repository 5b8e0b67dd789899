package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/beamctl/beamctl/internal/registrytest"
	"github.com/beamctl/beamctl/stage/stagetest"
)

// TestEngine drives the engine as prism's DOCKER environment does, through
// the Docker API: it pulls an image over plain HTTP, starts a container
// that writes into a shared directory, and leaves another running, which
// the engine's cleanup must stop.
func TestEngine(t *testing.T) {
	reg := registrytest.Start(t)
	ref := pushProbe(t, reg)
	shared := t.TempDir()
	var leftover int
	t.Run("run", func(t *testing.T) {
		e := Start(t, Options{Insecure: []string{reg.Host}, Volumes: []string{shared}})
		e.api(t, http.MethodPost, "/images/create?"+url.Values{"fromImage": {ref}}.Encode(), nil, nil)

		report := filepath.Join(shared, "report")
		id := e.createStart(t, ref, report)
		var waited struct{ StatusCode int }
		e.api(t, http.MethodPost, "/containers/"+id+"/wait", nil, &waited)
		if waited.StatusCode != 0 {
			t.Fatalf("the probe exited with %d:\n%s", waited.StatusCode, e.Output())
		}
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatalf("the probe's report is not in the shared directory: %v", err)
		}
		// Podman would ask for more open files than a sandbox may allow;
		// the container gets what its engine has.
		var nofile uint64
		if _, err := fmt.Sscan(string(b), &nofile); err != nil {
			t.Fatalf("report %q: %v", b, err)
		}
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
		if nofile > rl.Max {
			t.Errorf("the probe may open %d files, more than the test's %d", nofile, rl.Max)
		}

		// A worker the job server never stopped.
		id = e.createStart(t, ref)
		var inspect struct{ State struct{ Pid int } }
		e.api(t, http.MethodGet, "/containers/"+id+"/json", nil, &inspect)
		if leftover = inspect.State.Pid; leftover <= 0 {
			t.Fatalf("the running probe has pid %d", leftover)
		}
	})
	if running(leftover) {
		t.Errorf("the probe left running (pid %d) outlived its engine", leftover)
	}
}

// createStart starts a container from the image with args on the host's
// network, as prism does; unlike prism, it keeps the container once it
// exits, so that the test may wait for it.
func (e *Engine) createStart(t *testing.T, image string, args ...string) string {
	t.Helper()
	var created struct{ Id string }
	e.api(t, http.MethodPost, "/containers/create", map[string]any{
		"Image":      image,
		"Cmd":        args,
		"HostConfig": map[string]any{"NetworkMode": "host"},
	}, &created)
	e.api(t, http.MethodPost, "/containers/"+created.Id+"/start", nil, nil)
	return created.Id
}

// api calls the engine's Docker API and decodes the answer into out. A
// streamed answer (a pull's progress) is read to its end and must hold no
// error.
func (e *Engine) api(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://engine"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, e.Output())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode >= 300 || bytes.Contains(b, []byte(`"error"`)) {
		t.Fatalf("%s %s: %s\n%s\n%s", method, path, resp.Status, b, e.Output())
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
}

// pushProbe pushes an image of this machine's platform whose entrypoint is
// testdata/probe, and returns it by digest.
func pushProbe(t *testing.T, reg *registrytest.Registry) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := stagetest.Build(ctx, t.TempDir(), "probe", "./testdata/probe")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "probe", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: runtime.GOARCH,
		Config: v1.Config{Entrypoint: []string{"/probe"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, l); err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(reg.Host+"/enginetest/probe:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Name() + "@" + d.String()
}

// running reports whether pid is a process that has not exited; a zombie
// has.
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command's name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

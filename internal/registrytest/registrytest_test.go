package registrytest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// push writes a random image to repo on r and returns it with the number of
// blobs it holds: its layers and its config.
func push(t *testing.T, r *Registry, repo string) (name.Reference, v1.Image, int) {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Host+"/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref, img, len(layers) + 1
}

func TestPushPull(t *testing.T) {
	r := Start(t)
	ref, img, blobs := push(t, r, "beamctl/test")

	// Exactly, not just some: a parser that also counted session starts or
	// chunks would say more.
	uploads := r.BlobUploads()
	if uploads != blobs {
		t.Errorf("after the first push BlobUploads() = %d, want %d (one a blob)", uploads, blobs)
	}

	pulled, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := pulled.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("pulled %s, pushed %s", got, want)
	}

	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push %s again: %v", ref, err)
	}
	if again := r.BlobUploads(); again != uploads {
		t.Errorf("pushing the same image again uploaded %d blobs", again-uploads)
	}
}

func TestTwoRegistries(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Host == b.Host {
		t.Errorf("both registries on %s", a.Host)
	}
	if a.Dir == b.Dir {
		t.Errorf("both registries store in %s", a.Dir)
	}
	_, _, blobs := push(t, a, "only/a")
	if got := a.BlobUploads(); got != blobs {
		t.Errorf("a: BlobUploads() = %d, want %d", got, blobs)
	}
	if got := b.BlobUploads(); got != 0 {
		t.Errorf("b saw %d uploads pushed to a", got)
	}
}

// TestPortTaken gives the registry a port that a server answering like a
// registry already holds: Start must neither take that server for its
// registry nor give up, but move to another port.
func TestPortTaken(t *testing.T) {
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("{}"))
	}))
	defer thief.Close()
	taken := thief.Listener.Addr().String()

	pick := freeAddr
	t.Cleanup(func() { freeAddr = pick })
	given := 0
	freeAddr = func() (string, error) {
		given++
		if given == 1 {
			return taken, nil
		}
		return pick()
	}

	r := Start(t)
	if r.Host == taken {
		t.Fatalf("Start took the server on %s for its registry", taken)
	}
	if given != 2 {
		t.Errorf("Start asked for %d ports, want 2", given)
	}
	push(t, r, "moved")
}

// TestCleanup checks that a registry does not outlive its test, nor does
// what it stored.
func TestCleanup(t *testing.T) {
	var host, dir string
	t.Run("use", func(t *testing.T) {
		r := Start(t)
		push(t, r, "gone/soon")
		host, dir = r.Host, r.Dir
	})
	if host == "" {
		t.Skip("the registry did not start")
	}
	if conn, err := net.Dial("tcp", host); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the test", host)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("storage %s remains after the test: %v", dir, err)
	}
}

// tb stands in for a test, to see how Start gives up; Start must stop
// where it calls Skipf or Fatalf, as with a real test.
type tb struct {
	testing.TB
	skipped, failed string
}

func (t *tb) Helper() {}
func (t *tb) Skipf(format string, args ...any) {
	t.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (t *tb) Fatalf(format string, args ...any) {
	t.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	startWithout := func() *tb {
		fake := &tb{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(fake)
			t.Error("Start returned without the binary")
		}()
		<-done
		return fake
	}

	t.Setenv(requireEnv, "")
	os.Unsetenv(requireEnv)
	fake := startWithout()
	if fake.failed != "" || !strings.Contains(fake.skipped, install) {
		t.Errorf("unrequired: skipped %q, failed %q; want a skip naming %q", fake.skipped, fake.failed, install)
	}

	t.Setenv(requireEnv, "1")
	fake = startWithout()
	if fake.skipped != "" || !strings.Contains(fake.failed, install) {
		t.Errorf("required: skipped %q, failed %q; want a failure naming %q", fake.skipped, fake.failed, install)
	}
}

// The lines are docker-registry 2.8.2's own.
func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		line   string
		method string
		path   string
		status int
		upload bool
	}{
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`, "GET", "/v2/", 200, false},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "POST /v2/foo/bar/blobs/uploads/ HTTP/1.1" 202 0 "" "curl/7.88.1"`, "POST", "/v2/foo/bar/blobs/uploads/", 202, false},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "PATCH /v2/a/blobs/uploads/634710e4?_state=Jrmo HTTP/1.1" 202 0 "" "go-containerregistry/v0.22.1"`, "PATCH", "/v2/a/blobs/uploads/634710e4", 202, false},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "PUT /v2/a/b/c/blobs/uploads/634710e4?_state=Jrmo&digest=sha256%3A00 HTTP/1.1" 201 0 "" "go-containerregistry/v0.22.1"`, "PUT", "/v2/a/b/c/blobs/uploads/634710e4", 201, true},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "PUT /v2/a/blobs/uploads/634710e4?digest=sha256%3A00 HTTP/1.1" 400 88 "" "x"`, "PUT", "/v2/a/blobs/uploads/634710e4", 400, false},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "POST /v2/a/blobs/uploads/?digest=sha256%3A00 HTTP/1.1" 201 0 "" "x"`, "POST", "/v2/a/blobs/uploads/", 201, true},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "POST /v2/a/blobs/uploads/?mount=sha256%3A00&from=b HTTP/1.1" 201 0 "" "x"`, "POST", "/v2/a/blobs/uploads/", 201, false},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "PUT /v2/a/manifests/latest HTTP/1.1" 201 0 "" "x"`, "PUT", "/v2/a/manifests/latest", 201, false},
		{`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "PUT /v2/a/blobs/uploads/x HTTP/1.1" 201 "`, "GET", "/v2/", 200, false},
	} {
		method, u, status, ok := parseLine(c.line)
		if !ok || method != c.method || u.Path != c.path || status != c.status {
			t.Errorf("parseLine(%q) = %s %v %d %v, want %s %s %d", c.line, method, u, status, ok, c.method, c.path, c.status)
			continue
		}
		if got := completesUpload(method, u, status); got != c.upload {
			t.Errorf("completesUpload(%q) = %v, want %v", c.line, got, c.upload)
		}
	}
	for _, line := range []string{
		"",
		`time="2026-11-21T21:34:44Z" level=info msg="listening on 127.0.0.1:35123"`,
		`127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "GET /v2/ HTTP/1.1`,
	} {
		if _, _, _, ok := parseLine(line); ok {
			t.Errorf("parseLine(%q) found a request", line)
		}
	}
}

// TestAccessLogSplitsWrites feeds lines in pieces, as a pipe may deliver
// them.
func TestAccessLogSplitsWrites(t *testing.T) {
	l := newOutput()
	text := `127.0.0.1 - - [x] "PUT /v2/a/blobs/uploads/1?digest=sha256%3A00 HTTP/1.1" 201 0 "" "x"` + "\n" +
		`127.0.0.1 - - [x] "GET /v2/?` + markParam + `=7 HTTP/1.1" 200 2 "" "x"` + "\n"
	for i := 0; i < len(text); i += 7 {
		l.Write([]byte(text[i:min(i+7, len(text))]))
	}
	if got := l.count(); got != 1 {
		t.Errorf("count() = %d, want 1", got)
	}
	if seen, _ := l.seen("7"); !seen {
		t.Error("mark 7 not seen")
	}
}

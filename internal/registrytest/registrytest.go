// Package registrytest runs a real container registry, the CNCF
// distribution registry that Debian packages as docker-registry, for
// end-to-end tests that push and pull images. A fake served from the test
// process would share our reading of the distribution API and so could not
// catch us getting it wrong; the real one also tells, through its access
// log, what a client actually sent.
package registrytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/beamctl/beamctl/internal/lines"
	"github.com/beamctl/beamctl/internal/proc"
)

const (
	binary  = "docker-registry"
	install = "apt-get install -y docker-registry"
	// requireEnv turns a missing registry into a failure, so that a machine
	// meant to run the end-to-end tests cannot pass by skipping them.
	requireEnv = "BEAMCTL_REQUIRE_REGISTRY"

	// Generous, for a loaded two-core machine; a healthy registry is up in
	// milliseconds.
	startTimeout = 30 * time.Second
	// Bounds each readiness probe, so that one lost connection costs a
	// probe, not the whole start.
	probeTimeout = time.Second
	pollInterval = 20 * time.Millisecond
	// Another process may take the port between our choosing it and the
	// registry binding it; a few fresh ports make that a non-event.
	portAttempts = 5
	// The registry dies at once on SIGTERM; this only bounds a hung one.
	stopGrace = 5 * time.Second
	// markParam tags the probes whose access-log lines tell us the log has
	// caught up.
	markParam = "beamctl-mark"
)

// Registry is a running registry process serving plain HTTP on 127.0.0.1.
// Image references to it need name.Insecure.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Dir is the storage root.
	Dir string

	t      testing.TB
	p      *process
	client *http.Client
	marks  atomic.Int64
}

// Start starts a registry for the test and, in t.Cleanup, stops it and
// removes its storage. Without the docker-registry binary the test is
// skipped, or fails when BEAMCTL_REQUIRE_REGISTRY is set.
func Start(t testing.TB) *Registry {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err != nil {
		if _, required := os.LookupEnv(requireEnv); required {
			t.Fatalf("%s is set but %s is not installed (%v); install it with: %s", requireEnv, binary, err, install)
		}
		t.Skipf("%s is not installed; install it with: %s", binary, install)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "storage")
	for attempt := 1; ; attempt++ {
		r, err := launch(t, path, root, dir)
		if err == nil {
			return r
		}
		if r == nil {
			t.Fatalf("start %s: %v", binary, err)
		}
		out := r.p.out.String()
		if attempt < portAttempts && strings.Contains(out, "address already in use") {
			t.Logf("registry lost port %s to another process; trying another", r.Host)
			continue
		}
		t.Fatalf("start %s at %s: %v\n%s", binary, r.Host, err, out)
	}
}

// launch runs one registry and waits until it serves. Should the registry
// fail, the Registry returned with the error holds its output, and its
// process has been reaped.
func launch(t testing.TB, path, root, dir string) (*Registry, error) {
	host, err := freeAddr()
	if err != nil {
		return nil, err
	}
	config := filepath.Join(root, "config.yml")
	if err := writeConfig(config, host, dir); err != nil {
		return nil, err
	}
	r := &Registry{
		Host: host,
		Dir:  dir,
		t:    t,
		p:    run(path, "serve", config),
		// A transport of our own: no proxy, and its connections end with
		// the registry.
		client: &http.Client{Transport: &http.Transport{}},
	}
	if err := r.waitReady(); err != nil {
		r.p.stop()
		return r, err
	}
	t.Cleanup(func() {
		select {
		case <-r.p.done:
			t.Errorf("registry at %s exited during the test: %v\n%s", r.Host, r.p.err(), r.p.out.String())
		default:
		}
		r.p.stop()
		r.client.CloseIdleConnections()
	})
	return r, nil
}

// freeAddr picks a loopback port no one listens on now. The registry takes
// an address, not a listener, so the port is free again before it binds.
// A variable, so that a test can hand out a taken port.
var freeAddr = func() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeConfig(path, host, dir string) error {
	cfg := map[string]any{
		"version": "0.1",
		"log": map[string]any{
			"level":     "info",
			"accesslog": map[string]any{"disabled": false},
		},
		"storage": map[string]any{
			"filesystem": map[string]any{"rootdirectory": dir},
			"delete":     map[string]any{"enabled": true},
		},
		"http": map[string]any{
			"addr": host,
			// Without one the registry warns at every start, which only
			// clutters the output a failing test shows.
			"secret": rand.Text(),
		},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// process is the registry's process, supervised by proc.Run: in a group of
// its own and killed by the kernel should the test binary die first.
type process struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once the process has been reaped
	res    proc.Result
	runErr error
	out    *output
}

func run(argv ...string) *process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{cancel: cancel, done: make(chan struct{}), out: newOutput()}
	// The registry reads REGISTRY_* variables as overrides of its
	// configuration: one meant for another registry must not move ours.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "REGISTRY_") })
	go func() {
		defer close(p.done)
		p.res, p.runErr = proc.Run(ctx,
			proc.Cmd{Argv: argv, Env: env, Stdout: p.out, Stderr: p.out.stderr()},
			proc.Options{Grace: stopGrace})
	}()
	return p
}

// stop stops the process, if it still runs, and reaps it.
func (p *process) stop() {
	p.cancel()
	<-p.done
}

// err says how the process ended; only once done is closed.
func (p *process) err() error {
	if p.runErr != nil {
		return p.runErr
	}
	if p.res.Err != nil {
		return p.res.Err
	}
	return errors.New("exited with status 0")
}

// waitReady probes until a probe shows up in this process's access log.
// That the port answers is not enough: it may be another process's, one
// that took the port first and made ours exit.
func (r *Registry) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		probe, cancelProbe := context.WithTimeout(ctx, probeTimeout)
		err := r.mark(probe)
		cancelProbe()
		if err == nil {
			return nil
		}
		select {
		case <-r.p.done:
			return fmt.Errorf("registry exited: %v", r.p.err())
		case <-ctx.Done():
			return fmt.Errorf("registry not ready after %v; last probe: %v", startTimeout, err)
		case <-tick.C:
		}
	}
}

// mark sends a request tagged with a fresh mark and waits for the access
// log to show it, which makes the log a barrier: the registry logs a
// request as its handler returns, and sends a small response (a /v2/ ping,
// an upload's 201) only then, so every such request answered before the
// mark is in the pipe ahead of it, and lines are read in order.
func (r *Registry) mark(ctx context.Context) error {
	token := strconv.FormatInt(r.marks.Add(1), 10)
	u := "http://" + r.Host + "/v2/?" + url.Values{markParam: {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	for {
		seen, changed := r.p.out.seen(token)
		if seen {
			return nil
		}
		select {
		case <-changed:
		case <-r.p.done:
			return fmt.Errorf("registry exited: %v", r.p.err())
		case <-ctx.Done():
			return fmt.Errorf("GET %s succeeded but the access log did not show it: %w", u, ctx.Err())
		}
	}
}

// BlobUploads returns how many blob uploads the registry has completed so
// far, as its access log tells: a PUT that closes an upload session, or a
// single POST that carries the blob's digest. Each blob a client sends
// counts once, however it sends it; a cross-repository mount sends no data
// and does not count. Call it from the test's goroutine: it fails the test
// should the registry not answer.
func (r *Registry) BlobUploads() int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := r.mark(ctx); err != nil {
		r.t.Fatalf("registry at %s: %v\n%s", r.Host, err, r.p.out.String())
	}
	return r.p.out.count()
}

// output is what the registry writes: both streams, kept for failure
// messages, and its standard output read as the access log, where it
// writes one line a request in the combined log format:
//
//	127.0.0.1 - - [21/Nov/2026:21:34:45 +0000] "POST /v2/a/b/blobs/uploads/ HTTP/1.1" 202 0 "" "curl/7.88.1"
type output struct {
	mu      sync.Mutex
	all     bytes.Buffer
	lines   lines.Splitter
	uploads int
	marks   map[string]bool
	changed chan struct{} // closed, and replaced, whenever a line arrives
}

func newOutput() *output {
	o := &output{marks: map[string]bool{}, changed: make(chan struct{})}
	o.lines.Line = func(l []byte) { o.line(string(l)) }
	return o
}

// Write is the registry's standard output.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all.Write(p)
	o.lines.Write(p)
	// A newline ended at least one line.
	if bytes.IndexByte(p, '\n') >= 0 {
		close(o.changed)
		o.changed = make(chan struct{})
	}
	return len(p), nil
}

// stderr takes the rest of what the registry says: only kept.
func (o *output) stderr() io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.all.Write(p)
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all.String()
}

func (o *output) line(s string) {
	method, u, status, ok := parseLine(s)
	if !ok {
		return
	}
	if completesUpload(method, u, status) {
		o.uploads++
	}
	if method == http.MethodGet && u.Path == "/v2/" && u.Query().Has(markParam) {
		o.marks[u.Query().Get(markParam)] = true
	}
}

// seen reports whether the mark has been logged, and else what will be
// closed when more is.
func (o *output) seen(token string) (bool, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.marks[token] {
		delete(o.marks, token)
		return true, nil
	}
	return false, o.changed
}

func (o *output) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.uploads
}

// requestRE finds the quoted request and the status after it. It takes the
// leftmost match, so a user agent that looks like a request cannot pass for
// one.
var requestRE = regexp.MustCompile(`"([A-Z]+) (\S+) HTTP/[0-9.]+" ([0-9]{3}) `)

// parseLine reads the method, request URI and status of an access-log line.
func parseLine(s string) (method string, u *url.URL, status int, ok bool) {
	m := requestRE.FindStringSubmatch(s)
	if m == nil {
		return "", nil, 0, false
	}
	u, err := url.ParseRequestURI(m[2])
	if err != nil {
		return "", nil, 0, false
	}
	status, _ = strconv.Atoi(m[3])
	return m[1], u, status, true
}

// uploadPath is /v2/<name>/blobs/uploads/, with or without a session id;
// a repository name may hold slashes.
var uploadPath = regexp.MustCompile(`^/v2/.+/blobs/uploads/[^/]*$`)

// completesUpload reports whether a logged request finished storing a blob
// the client sent: 201 Created to a PUT closing a session, or to a POST
// that sends the whole blob at once (it names the digest; a mount, which
// sends nothing, names "mount" instead).
func completesUpload(method string, u *url.URL, status int) bool {
	if status != http.StatusCreated || !uploadPath.MatchString(u.Path) {
		return false
	}
	switch method {
	case http.MethodPut:
		return true
	case http.MethodPost:
		return u.Query().Has("digest")
	}
	return false
}

// Image is one image of an index, with its config.
type Image struct {
	Desc   v1.Descriptor
	Image  v1.Image
	Config *v1.ConfigFile
}

// Images reads the images an index lists, as a node pulls the one for its
// platform, each with its config; an error fails the test.
func Images(t testing.TB, idx v1.ImageIndex) []Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []Image
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Image{Desc: m, Image: img, Config: cf})
	}
	return out
}

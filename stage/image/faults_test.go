package image

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/registrytest"
)

// flakyRegistry stands in front of a registry and answers three requests
// in ten itself, with a 500, or a 429 asking for a wait, as a registry
// under load does; it records what reached the registry.
type flakyRegistry struct {
	proxy *httputil.ReverseProxy

	mu sync.Mutex
	n  int
	// passed are the requests the registry answered, in order.
	passed []string
	// asked is when a 429 asked a request to wait, by method and path;
	// early are retries that came sooner.
	asked map[string]time.Time
	early []string
	// failing counts each kind of request's failures in a row.
	failing map[string]int
	failed  int
}

var uploadID = regexp.MustCompile(`/uploads/[^/]+$`)

const flakyWait = time.Second

func (f *flakyRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.n++
	n := f.n
	if at, ok := f.asked[key]; ok {
		if time.Since(at) < flakyWait {
			f.early = append(f.early, key)
		}
		delete(f.asked, key)
	}
	// Three requests in ten fail, but no request more than twice in a row
	// (an upload's session id aside), so that retries make progress.
	kind := uploadID.ReplaceAllString(key, "/uploads/*")
	fail := (n%10 == 2 || n%10 == 5 || n%10 == 8) && f.failing[kind] < 2
	if fail {
		f.failing[kind]++
		f.failed++
	} else {
		f.failing[kind] = 0
	}
	// Concurrent uploads start with the same POST, so only the other
	// requests tell one request's retry.
	if fail && n%20 == 5 && r.Method != http.MethodPost {
		f.asked[key] = time.Now()
	}
	f.mu.Unlock()
	switch {
	case fail && n%20 == 5:
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
	case fail:
		http.Error(w, "registry overloaded", http.StatusInternalServerError)
	default:
		rec := &statusRecorder{ResponseWriter: w}
		f.proxy.ServeHTTP(rec, r)
		if rec.status < 300 {
			f.mu.Lock()
			f.passed = append(f.passed, key)
			f.mu.Unlock()
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// TestPushThroughFlakyRegistry pushes the same two-platform image to a
// real registry directly and through a registry that fails 30 % of
// requests: the push completes within its retries, honours Retry-After,
// gives the same digest as the undisturbed push, and writes the tag after
// everything it names.
func TestPushThroughFlakyRegistry(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	target, err := url.Parse("http://" + reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyRegistry{proxy: httputil.NewSingleHostReverseProxy(target), asked: map[string]time.Time{}, failing: map[string]int{}}
	front := httptest.NewServer(flaky)
	defer front.Close()
	host := strings.TrimPrefix(front.URL, "http://")

	ctx := context.Background()
	ps := platforms(t, t.TempDir(), amd64, arm64)
	calm, err := Push(ctx, Options{Ref: reg.Host + "/calm/wc:v1", Platforms: ps, CacheDir: t.TempDir(), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Push(ctx, Options{Ref: host + "/flaky/wc:v1", Platforms: ps, CacheDir: t.TempDir(), Insecure: true})
	if err != nil {
		t.Fatalf("push through a registry failing 30%% of requests: %v", err)
	}
	if got.Digest != calm.Digest {
		t.Errorf("digest %s through the flaky registry, %s without it", got.Digest, calm.Digest)
	}
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if flaky.n < 20 || flaky.failed*5 < flaky.n {
		t.Fatalf("%d of %d requests failed: the fault pattern was not exercised", flaky.failed, flaky.n)
	}
	t.Logf("%d of %d requests failed", flaky.failed, flaky.n)
	if len(flaky.early) > 0 {
		t.Errorf("retried before the Retry-After wait: %v", flaky.early)
	}
	tag := "PUT /v2/flaky/wc/manifests/v1"
	var tagAt []int
	for i, k := range flaky.passed {
		if k == tag {
			tagAt = append(tagAt, i)
		}
	}
	last := -1
	for i, k := range flaky.passed {
		if strings.HasPrefix(k, "PUT ") || strings.HasPrefix(k, "PATCH ") || strings.HasPrefix(k, "POST ") {
			last = i
		}
	}
	if len(tagAt) != 1 || tagAt[0] != last {
		t.Errorf("the tag was written at %v of the writes, want once and last:\n%s", tagAt, strings.Join(flaky.passed, "\n"))
	}
}

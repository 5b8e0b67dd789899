// Package gcptest serves on loopback the Google Cloud endpoints that the
// Beam Go SDK's Dataflow runner uses, for end-to-end tests of Dataflow
// submissions on machines that cannot reach Google Cloud:
//
//   - Cloud Storage: fake-gcs-server, a Cloud Storage emulator built from
//     the module proxy at a pinned version, which the storage client
//     reaches through STORAGE_EMULATOR_HOST;
//   - credentials: a metadata server (GCE_METADATA_HOST) handing out an
//     access token, as on Compute Engine, where Application Default
//     Credentials find it;
//   - Dataflow's jobs API (v1b3), reached through the SDK's own
//     --dataflow_endpoint: it keeps the jobs created and reports the state
//     the test chooses, so that a job can succeed, fail or run on.
//
// Only the SDK's clients speak to them, so what a test checks is what the
// SDK sends; beamctl never speaks these APIs itself.
package gcptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/proc"
	"github.com/beamctl/beamctl/internal/syncbuf"
)

// The Cloud Storage emulator, as go install takes it.
const (
	StoragePackage = "github.com/fsouza/fake-gcs-server"
	StorageVersion = "v1.56.1"
)

// Job states of Dataflow's API.
const (
	Running   = "JOB_STATE_RUNNING"
	Done      = "JOB_STATE_DONE"
	Failed    = "JOB_STATE_FAILED"
	Cancelled = "JOB_STATE_CANCELLED"
)

const (
	startTimeout = 30 * time.Second
	pollInterval = 20 * time.Millisecond
	portAttempts = 5
	stopGrace    = 5 * time.Second
	// requestTimeout bounds each request to the emulator, so that a hung
	// one fails the test instead of hanging it. Reading a worker takes
	// well under a second on loopback.
	requestTimeout = time.Minute
)

// BuildStorage builds the Cloud Storage emulator, kept under cacheDir by
// version, and returns its path; the modules come from the module cache or
// the proxy.
func BuildStorage(ctx context.Context, cacheDir string) (string, error) {
	tc, err := build.FindToolchain(ctx, nil)
	if err != nil {
		return "", err
	}
	return build.Tool(ctx, tc, StoragePackage, StorageVersion, build.HostPlatform(), cacheDir)
}

// Job is a job created through the Dataflow API.
type Job struct {
	ID, Project, Region string
	// Spec is the job as the SDK sent it (v1b3 Job JSON).
	Spec json.RawMessage
}

// Cloud is the three services, up for one test.
type Cloud struct {
	// Token is the access token the metadata server hands out; requests
	// to the Dataflow API without it are refused.
	Token string
	// Project is the metadata server's project.
	Project string
	// DataflowEndpoint is the Dataflow API's base URL, for the SDK's
	// --dataflow_endpoint.
	DataflowEndpoint string

	t        testing.TB
	storage  string // http://127.0.0.1:PORT
	client   *http.Client
	metadata *httptest.Server
	dataflow *httptest.Server

	mu       sync.Mutex
	state    string
	jobs     []Job
	polled   chan struct{} // closed at the first poll of a job's state since SetState
	changes  []string      // state changes the SDK asked for
	unknown  []string      // requests no handler expected
	unauthed int
}

// Start starts the services and points this process's environment (and so
// its children's) at them with t.Setenv; storageBin is BuildStorage's.
// Jobs report Done until SetState says otherwise.
func Start(t testing.TB, storageBin string) *Cloud {
	t.Helper()
	c := &Cloud{
		Token:   "ya29.gcptest-" + rand.Text(),
		Project: "gcptest-project",
		t:       t,
		client:  &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: requestTimeout},
		state:   Done,
		polled:  make(chan struct{}),
	}
	c.startStorage(storageBin)
	c.metadata = httptest.NewServer(http.HandlerFunc(c.serveMetadata))
	t.Cleanup(c.metadata.Close)
	c.dataflow = httptest.NewServer(http.HandlerFunc(c.serveDataflow))
	t.Cleanup(c.dataflow.Close)
	c.DataflowEndpoint = c.dataflow.URL + "/"

	t.Setenv("STORAGE_EMULATOR_HOST", c.storage)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(c.metadata.URL, "http://"))
	// Application Default Credentials look at these first: they must find
	// nothing of the user's, so that the metadata server answers.
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	// Loopback is not to be proxied; a test may point proxies elsewhere to
	// catch any other connection.
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		t.Setenv(k, "127.0.0.1")
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.unknown) > 0 {
			t.Errorf("the SDK made requests the Google Cloud stand-ins do not serve: %q", c.unknown)
		}
	})
	return c
}

func (c *Cloud) startStorage(bin string) {
	c.t.Helper()
	var errs []error
	for range portAttempts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		host := "127.0.0.1:" + strconv.Itoa(port)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		out := &syncbuf.Buffer{}
		var res proc.Result
		var runErr error
		go func() {
			defer close(done)
			res, runErr = proc.Run(ctx, proc.Cmd{
				Argv: []string{bin, "-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
					"-public-host", host, "-external-url", "http://" + host, "-backend", "memory", "-log-level", "warn"},
				Stdout: out, Stderr: out,
			}, proc.Options{Grace: stopGrace})
		}()
		stop := func() { cancel(); <-done }
		if err := c.waitStorage(host, done); err != nil {
			stop()
			if runErr == nil {
				runErr = res.Err
			}
			errs = append(errs, fmt.Errorf("%w (exit: %v)\n%s", err, runErr, out.String()))
			continue
		}
		c.storage = "http://" + host
		c.t.Cleanup(stop)
		return
	}
	c.t.Fatalf("starting the Cloud Storage emulator: %v", errors.Join(errs...))
}

func (c *Cloud) waitStorage(host string, done <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := c.client.Get("http://" + host + "/storage/v1/b")
		if err == nil {
			var list struct{ Kind string }
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			if err == nil && list.Kind == "storage#buckets" {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("the emulator exited")
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", startTimeout, err)
		}
	}
}

// SetState is the state every job reports from now on.
func (c *Cloud) SetState(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = s
	c.polled = make(chan struct{})
}

// Jobs are the jobs created so far.
func (c *Cloud) Jobs() []Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Job(nil), c.jobs...)
}

// Polled is closed once the SDK has asked for a job's state since the
// last SetState.
func (c *Cloud) Polled() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polled
}

// StateChanges are the states the SDK asked jobs to go to (a cancel, a
// drain), as "ID STATE".
func (c *Cloud) StateChanges() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.changes...)
}

// Unauthorized is how many Dataflow requests came without the token.
func (c *Cloud) Unauthorized() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unauthed
}

// CreateBucket creates a bucket, as a user creates the staging bucket
// before the first submission: the SDK creates a missing one only by
// mistake (it takes a storage client's 404 for a failure).
func (c *Cloud) CreateBucket(name string) error {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return err
	}
	resp, err := c.client.Post(c.storage+"/storage/v1/b?project="+url.QueryEscape(c.Project), "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("creating gs://%s: %s", name, resp.Status)
	}
	return nil
}

// Objects lists the names of the objects in bucket.
func (c *Cloud) Objects(bucket string) ([]string, error) {
	resp, err := c.client.Get(c.storage + "/storage/v1/b/" + url.PathEscape(bucket) + "/o")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("listing gs://%s: %s", bucket, resp.Status)
	}
	var list struct{ Items []struct{ Name string } }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	var names []string
	for _, it := range list.Items {
		names = append(names, it.Name)
	}
	return names, nil
}

// Object reads gs://bucket/name.
func (c *Cloud) Object(bucket, name string) ([]byte, error) {
	resp, err := c.client.Get(c.storage + "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(name) + "?alt=media")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading gs://%s/%s: %s", bucket, name, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// serveMetadata answers as Compute Engine's metadata server does, for the
// requests Application Default Credentials make.
func (c *Cloud) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "missing Metadata-Flavor: Google", http.StatusForbidden)
		return
	}
	w.Header().Set("Metadata-Flavor", "Google")
	switch strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/") {
	case "instance/service-accounts/default/token":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": c.Token, "expires_in": 3600, "token_type": "Bearer"})
	case "project/project-id":
		io.WriteString(w, c.Project)
	case "instance/service-accounts/default/email":
		io.WriteString(w, "dataflow@"+c.Project+".iam.gserviceaccount.com")
	case "universe/universe-domain":
		io.WriteString(w, "googleapis.com")
	case "instance/service-accounts/default/scopes":
		io.WriteString(w, "https://www.googleapis.com/auth/cloud-platform\n")
	default:
		http.NotFound(w, r)
	}
}

var (
	jobsPath = regexp.MustCompile(`^/v1b3/projects/([^/]+)/locations/([^/]+)/jobs$`)
	jobPath  = regexp.MustCompile(`^/v1b3/projects/([^/]+)/locations/([^/]+)/jobs/([^/:]+)(/metrics)?$`)
)

// serveDataflow is the part of Dataflow's v1b3 API the SDK's runner uses:
// create a job, poll it, read its metrics, and change its state.
func (c *Cloud) serveDataflow(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+c.Token {
		c.unauthed++
		apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request is missing required authentication credential.")
		return
	}
	if m := jobsPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(body) {
			apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
			return
		}
		id := time.Now().UTC().Format("2006-01-02_15_04_05") + "-" + strconv.Itoa(len(c.jobs)+1)
		c.jobs = append(c.jobs, Job{ID: id, Project: m[1], Region: m[2], Spec: body})
		var job map[string]any
		json.Unmarshal(body, &job)
		job["id"], job["projectId"], job["location"], job["currentState"] = id, m[1], m[2], "JOB_STATE_PENDING"
		writeJSON(w, job)
		return
	}
	m := jobPath.FindStringSubmatch(r.URL.Path)
	var job *Job
	if m != nil {
		for i := range c.jobs {
			if j := &c.jobs[i]; j.ID == m[3] && j.Project == m[1] && j.Region == m[2] {
				job = j
			}
		}
	}
	switch {
	case m == nil:
		c.unknown = append(c.unknown, r.Method+" "+r.URL.Path)
		apiError(w, http.StatusNotFound, "NOT_FOUND", "Not found.")
	case job == nil:
		apiError(w, http.StatusNotFound, "NOT_FOUND", "(job) Job "+m[3]+" not found.")
	case m[4] != "" && r.Method == http.MethodGet:
		writeJSON(w, map[string]any{"metrics": []any{}})
	case r.Method == http.MethodGet:
		select {
		case <-c.polled:
		default:
			close(c.polled)
		}
		writeJSON(w, map[string]any{"id": job.ID, "projectId": job.Project, "location": job.Region, "currentState": c.state})
	case r.Method == http.MethodPut:
		var upd struct{ RequestedState string }
		json.NewDecoder(r.Body).Decode(&upd)
		c.changes = append(c.changes, job.ID+" "+upd.RequestedState)
		writeJSON(w, map[string]any{"id": job.ID, "currentState": c.state, "requestedState": upd.RequestedState})
	default:
		c.unknown = append(c.unknown, r.Method+" "+r.URL.Path)
		apiError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "Method not allowed.")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// apiError answers as Google's APIs do, so that the client reads a
// googleapi.Error.
func apiError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

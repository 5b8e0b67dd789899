package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/beamctl/beamctl/build"
)

// dataflowJSON is what run and submit --runner dataflow --output json print.
type dataflowJSON struct {
	JobID        string `json:"job_id"`
	Project      string `json:"project"`
	Region       string `json:"region"`
	Worker       string `json:"worker"`
	WorkerSHA256 string `json:"worker_sha256"`
	Platform     string `json:"platform"`
	MachineType  string `json:"machine_type"`
	Image        string `json:"image"`
	DryRun       bool   `json:"dry_run"`
	State        string `json:"state"`
	Error        string `json:"error"`
	Job          struct {
		ProjectID   string `json:"projectId"`
		Environment struct {
			SDKPipelineOptions struct {
				Options struct {
					Region string `json:"region"`
				} `json:"options"`
				GoOptions struct {
					Options map[string]string `json:"options"`
				} `json:"beam:option:go_options:v1"`
			} `json:"sdkPipelineOptions"`
			WorkerPools []struct {
				MachineType               string `json:"machineType"`
				SDKHarnessContainerImages []struct {
					ContainerImage string `json:"containerImage"`
				} `json:"sdkHarnessContainerImages"`
			} `json:"workerPools"`
		} `json:"environment"`
	} `json:"job"`
}

// countingListener stands in for a proxy or a metadata server: it counts
// the connections anyone opens to it and refuses every request, so that
// a client that tries fails at once rather than retrying for minutes.
func countingListener(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()
	return l.Addr().String(), &n
}

// offline sends every Google endpoint the SDK could reach to listeners that
// count connections and answer none, so a dry run that used the network
// would be counted (or hang). It gives the SDK credentials, as a user's
// machine has, because the SDK's own dry run uses them to call Cloud
// Storage.
func offline(t *testing.T) (connections func() int64) {
	proxy, viaProxy := countingListener(t)
	metadata, toMetadata := countingListener(t)
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(k, "http://"+proxy)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	t.Setenv("GCE_METADATA_HOST", metadata)
	t.Setenv("GCE_METADATA_IP", metadata)
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", creds)
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	return func() int64 { return viaProxy.Load() + toMetadata.Load() }
}

// workerOf checks the binary the job names: its ELF machine and sha256.
func workerOf(t *testing.T, path string) (elf.Machine, string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("the job's worker %s: %v", path, err)
	}
	defer f.Close()
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return f.Machine, hex.EncodeToString(h.Sum(nil))
}

// TestDataflowDryRun submits wordcount's amd64 and arm64 workers to the
// SDK's Dataflow runner with --dry-run, without network or credentials, and
// checks the job it prints: the worker it names is beamctl's for the
// target (ELF machine, sha256), the image is the staged one by digest, the
// project and region are given, and the machine type agrees with the
// target; a disagreement is a usage error naming both.
func TestDataflowDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wordcount for two platforms")
	}
	dist := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", "../../examples/wordcount", "--boot", "--target", "linux/amd64,linux/arm64", "--out", dist); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	var registryRequests atomic.Int64
	reg := registryHost(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			registryRequests.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	staged := stageImage(t, dist, "--image", reg+"/wc:v1")
	registryRequests.Store(0)
	m, err := build.ReadManifest(dist)
	if err != nil {
		t.Fatal(err)
	}
	sha := map[string]string{}
	for _, w := range m.Workers() {
		sha[w.Platform.String()] = w.SHA256
	}
	connections := offline(t)

	base := []string{"submit", dist, "--runner", "dataflow", "--project", "beam-p1", "--region", "europe-west4",
		"--staging-location", "gs://bucket/staging", "--dry-run"}
	tests := []struct {
		name    string
		args    []string
		code    int
		want    string // in stderr, for a failure
		machine elf.Machine
		mtype   string
		image   bool
	}{
		{"arm64 on t2a with the image", []string{"--target", "linux/arm64", "--machine-type", "t2a-standard-4", "--image", staged.Image}, 0, "", elf.EM_AARCH64, "t2a-standard-4", true},
		{"arm64 on c4a from the pipeline's argument", []string{"--target", "linux/arm64", "--", "--worker_machine_type=c4a-standard-8"}, 0, "", elf.EM_AARCH64, "c4a-standard-8", false},
		{"amd64 on the default machine", []string{"--target", "linux/amd64", "--image", staged.Image}, 0, "", elf.EM_X86_64, "", true},
		{"amd64 on n2 from the SDK's alias", []string{"--target", "linux/amd64", "--", "--machine_type", "n2-standard-4"}, 0, "", elf.EM_X86_64, "n2-standard-4", false},
		{"amd64 on t2a", []string{"--target", "linux/amd64", "--machine-type", "t2a-standard-4"}, exitUsage, "--target linux/amd64 does not run on Dataflow machine type t2a-standard-4", 0, "", false},
		{"arm64 on n2 from the pipeline's argument", []string{"--target", "linux/arm64", "--", "--machine_type=n2-standard-4"}, exitUsage, "--target linux/arm64 does not run on Dataflow machine type n2-standard-4", 0, "", false},
		{"arm64 on the default machine", []string{"--target", "linux/arm64"}, exitUsage, "--target linux/arm64 needs an Arm machine type", 0, "", false},
		{"machine types disagree", []string{"--target", "linux/arm64", "--machine-type", "t2a-standard-4", "--", "--worker_machine_type=c4a-standard-8"}, exitUsage, `--machine-type "t2a-standard-4" and the pipeline arguments`, 0, "", false},
		{"pipeline sets beamctl's argument", []string{"--target", "linux/amd64", "--", "--worker_binary=/bin/true"}, exitUsage, "the pipeline argument worker_binary is beamctl's to set", 0, "", false},
		{"image by tag on a dry run", []string{"--target", "linux/amd64", "--image", reg + "/wc:v1"}, exitUsage, "--dry-run pushes no image and reaches no registry, but --image " + reg + "/wc:v1 is a tag", 0, "", false},
		{"wait on a dry run", []string{"--target", "linux/amd64", "--wait"}, exitUsage, "--wait has nothing to wait for", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, base...), "--output", "json")
			args = append(args, tt.args...)
			if !slices.Contains(tt.args, "--") {
				args = append(args, "--")
			}
			r := beamctl(t, append(args, "--input=gs://b/in", "--output=gs://b/out")...)
			if tt.code != 0 {
				if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stdout != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and one line with %q", r.code, r.stdout, r.stderr, tt.code, tt.want)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			var j dataflowJSON
			if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
				t.Fatalf("output %q: %v", r.stdout, err)
			}
			job := j.Job
			if !j.DryRun || j.JobID != "" || job.ProjectID != "beam-p1" || j.Project != "beam-p1" ||
				job.Environment.SDKPipelineOptions.Options.Region != "europe-west4" || j.Region != "europe-west4" {
				t.Errorf("dry run %v, job id %q, project %q/%q, region %q/%q", j.DryRun, j.JobID, job.ProjectID, j.Project,
					job.Environment.SDKPipelineOptions.Options.Region, j.Region)
			}
			named := job.Environment.SDKPipelineOptions.GoOptions.Options["worker_binary"]
			machine, sum := workerOf(t, named)
			if machine != tt.machine || sum != sha[j.Platform] || j.WorkerSHA256 != sum || named != j.Worker {
				t.Errorf("the job's worker %s is %v sha256 %s (beamctl says %s sha256 %s); want %v and the manifest's %s",
					named, machine, sum, j.Worker, j.WorkerSHA256, tt.machine, sha[j.Platform])
			}
			pools := job.Environment.WorkerPools
			if len(pools) != 1 || pools[0].MachineType != tt.mtype || j.MachineType != tt.mtype {
				t.Fatalf("worker pools %+v, machine type %q; want one of machine type %q", pools, j.MachineType, tt.mtype)
			}
			images := pools[0].SDKHarnessContainerImages
			switch {
			case len(images) != 1:
				t.Errorf("container images %+v, want one", images)
			case tt.image && (images[0].ContainerImage != staged.Image || j.Image != staged.Image):
				t.Errorf("container image %q (beamctl says %q), want the staged %s", images[0].ContainerImage, j.Image, staged.Image)
			case !tt.image && strings.Contains(images[0].ContainerImage, reg):
				t.Errorf("container image %q without --image", images[0].ContainerImage)
			}
		})
	}
	if n := connections(); n != 0 {
		t.Errorf("%d connections to the proxy or metadata server that stand for Google's endpoints", n)
	}
	if n := registryRequests.Load(); n != 0 {
		t.Errorf("dry runs sent %d requests to the registry", n)
	}

	// A real submission needs Google: refused there, it fails with one
	// line that quotes the SDK and says what to check.
	r := beamctl(t, "submit", dist, "--runner", "dataflow", "--project", "beam-p1", "--region", "europe-west4",
		"--staging-location", "gs://bucket/staging", "--target", "linux/amd64", "--", "--input=gs://b/in", "--output=gs://b/out")
	if r.code != exitFailure || !strings.Contains(r.stderr, "googleapis.com") || !strings.Contains(r.stderr, "application-default login") ||
		strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stdout != "" {
		t.Errorf("submission without Google: exit %d, stdout %q, stderr %q; want exit 1 and one line with the SDK's error and the fix", r.code, r.stdout, r.stderr)
	}
}

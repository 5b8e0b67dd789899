package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/registrytest"
)

// file writes content to dir/name and returns its path and sha256.
func file(t *testing.T, dir, name, content string) (string, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256([]byte(content))
	return p, hex.EncodeToString(s[:])
}

func platforms(t *testing.T, dir string, ps ...build.Platform) []Platform {
	var out []Platform
	for _, p := range ps {
		w, ws := file(t, dir, "worker-"+p.Suffix(), "worker for "+p.String())
		b, bs := file(t, dir, "boot-"+p.Suffix(), "boot for "+p.String())
		out = append(out, Platform{Platform: p, Worker: w, WorkerSHA256: ws, Boot: b, BootSHA256: bs})
	}
	return out
}

var (
	amd64 = build.Platform{OS: "linux", Arch: "amd64"}
	arm64 = build.Platform{OS: "linux", Arch: "arm64"}
)

func TestPushIndex(t *testing.T) {
	s := httptest.NewServer(registry.New())
	defer s.Close()
	host := strings.TrimPrefix(s.URL, "http://")
	dir := t.TempDir()
	ps := platforms(t, dir, amd64, arm64)
	ctx := context.Background()
	for i := range ps {
		ps[i].SBOM = []byte(`{"spdxVersion":"SPDX-2.3","name":"` + ps[i].Platform.String() + `"}`)
	}
	o := Options{Ref: host + "/team/wc:v1", Platforms: ps, CacheDir: t.TempDir(), Labels: map[string]string{"team": "data"}}
	res, err := Push(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Image, host+"/team/wc@sha256:") || res.BlobsUploaded == 0 || res.BytesUploaded == 0 {
		t.Fatalf("result %+v", res)
	}
	ref, err := name.ParseReference(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	images := registrytest.Images(t, idx)
	if len(images) != 2 {
		t.Fatalf("index has %d manifests", len(images))
	}
	for i, e := range images {
		m, cf := e.Desc, e.Config
		want := ps[i]
		if m.Platform.OS != want.Platform.OS || m.Platform.Architecture != want.Platform.Arch {
			t.Errorf("manifest %d platform %v, want %v", i, m.Platform, want.Platform)
		}
		c := cf.Config
		if cf.Architecture != want.Platform.Arch || cf.OS != "linux" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != BootPath || c.User != "65532" {
			t.Errorf("config %+v", cf)
		}
		if c.Labels[LabelWorkerSHA256] != want.WorkerSHA256 || c.Labels["team"] != "data" || c.Labels["org.opencontainers.image.created"] != "1970-01-01T00:00:00Z" {
			t.Errorf("labels %v", c.Labels)
		}
		env := strings.Join(c.Env, "\n")
		for _, kv := range []string{boot.EnvBakedWorker + "=" + WorkerPath, boot.EnvBakedWorkerSHA256 + "=" + want.WorkerSHA256, "HOME=/home/beam", "USER=beam", "PATH="} {
			if !strings.Contains(env, kv) {
				t.Errorf("env lacks %s: %v", kv, c.Env)
			}
		}
		if res.Platforms[i].Digest != m.Digest.String() {
			t.Errorf("result platform %d digest %s, index %s", i, res.Platforms[i].Digest, m.Digest)
		}
		// The SBOM refers to the platform's image.
		refs, err := remote.Referrers(mustRef(t, host+"/team/wc@"+m.Digest.String()).(name.Digest))
		if err != nil {
			t.Fatal(err)
		}
		rm, err := refs.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(rm.Manifests) != 1 || rm.Manifests[0].Digest.String() != res.Platforms[i].SBOM || rm.Manifests[0].ArtifactType != "application/spdx+json" {
			t.Errorf("referrers of %s: %+v, want the SBOM %s", m.Digest, rm.Manifests, res.Platforms[i].SBOM)
		}
	}
	if tag, err := remote.Head(mustRef(t, host+"/team/wc:v1")); err != nil || tag.Digest.String() != res.Digest {
		t.Errorf("tag: %v %v, want %s", tag, err, res.Digest)
	}

	// The same files from another directory and an empty layer cache give
	// the same image, and nothing is uploaded again.
	dir2 := t.TempDir()
	o.Platforms = platforms(t, dir2, amd64, arm64)
	o.CacheDir = t.TempDir()
	again, err := Push(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest {
		t.Errorf("second push digest %s, first %s", again.Digest, res.Digest)
	}
	if again.BlobsUploaded != 0 || again.BytesUploaded != 0 {
		t.Errorf("second push uploaded %d blobs, %d bytes", again.BlobsUploaded, again.BytesUploaded)
	}

	// A created time changes the digest; layers of the worker stay cached.
	o.Created = time.Unix(1700000000, 0)
	third, err := Push(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == res.Digest {
		t.Error("created time did not change the digest")
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLayoutAndTarball(t *testing.T) {
	dir := t.TempDir()
	ps := platforms(t, dir, amd64, arm64)
	ctx := context.Background()
	lay := filepath.Join(t.TempDir(), "oci")
	res, err := Push(ctx, Options{Ref: "example.com/wc:v1", Platforms: ps, CacheDir: t.TempDir(), OCILayout: lay})
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != res.Digest {
		t.Errorf("layout index %+v, want one entry %s", im.Manifests, res.Digest)
	}
	// Writing again replaces the entry of the same name.
	if _, err := Push(ctx, Options{Ref: "example.com/wc:v1", Platforms: ps, CacheDir: t.TempDir(), OCILayout: lay}); err != nil {
		t.Fatal(err)
	}
	idx, _ = p.ImageIndex()
	if im, _ := idx.IndexManifest(); len(im.Manifests) != 1 {
		t.Errorf("layout has %d entries after writing the same tag again", len(im.Manifests))
	}

	tb := filepath.Join(t.TempDir(), "wc.tar")
	if _, err := Push(ctx, Options{Ref: "example.com/wc:v1", Platforms: ps[:1], CacheDir: t.TempDir(), Tarball: tb}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tb); err != nil || fi.Size() == 0 {
		t.Errorf("tarball: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	ps := platforms(t, dir, amd64, arm64)
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "x"), nil, 0o644)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"malformed", Options{Ref: "Registry/UPPER CASE"}, "is malformed"},
		{"digest", Options{Ref: "r.example/x@sha256:" + strings.Repeat("a", 64)}, "has a digest"},
		{"empty", Options{Ref: ""}, "is empty"},
		{"tarball of two", Options{Ref: "r.example/x", Tarball: filepath.Join(dir, "x.tar")}, "holds one platform"},
		{"layout not empty", Options{Ref: "r.example/x", OCILayout: notLayout}, "is not empty and not an OCI layout"},
		{"plain http beyond loopback", Options{Ref: "10.1.2.3:5000/x"}, "plain HTTP"},
		{"unreachable", Options{Ref: "127.0.0.1:1/x"}, "is unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Platforms, tt.o.CacheDir = ps, t.TempDir()
			_, err := Push(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
		})
	}
}

// TestRegistryErrorDockerHub: a registry error about Docker Hub says that
// a name without a registry host is Docker Hub's, unless Docker Hub
// answered (a refused login is about credentials).
func TestRegistryErrorDockerHub(t *testing.T) {
	unreachable := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	const hint = "is Docker Hub's"
	for _, tt := range []struct {
		reg  string
		err  error
		hint bool
	}{
		{name.DefaultRegistry, unreachable, true},
		{name.DefaultRegistry, errors.New("proxyconnect tcp: 403 Forbidden"), true},
		{name.DefaultRegistry, &transport.Error{StatusCode: http.StatusUnauthorized}, false},
		{"registry.example.com", unreachable, false},
	} {
		err := registryError(tt.reg, "pushing to "+tt.reg+"/team/wc", tt.err)
		if got := strings.Contains(err.Error(), hint); got != tt.hint {
			t.Errorf("%s, %v: %q; want the Docker Hub hint %v", tt.reg, tt.err, err, tt.hint)
		}
	}
}

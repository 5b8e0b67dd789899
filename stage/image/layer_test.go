package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/digest"
)

// childCache, in the environment, makes the test binary a stager of its
// own (see stageChild) instead of running tests: the way to have two
// processes share a layer cache.
const childCache = "BEAMCTL_IMAGE_TEST_CACHE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childCache); dir != "" {
		os.Exit(stageChild(dir))
	}
	os.Exit(m.Run())
}

// stageOutput is what one stage made: the image digest and its layers'.
type stageOutput struct {
	Image  string   `json:"image"`
	Layers []string `json:"layers"`
}

// stageChild makes the image of the worker and boot the environment names
// with the layer cache in dir, once the start file exists, so that two
// children start together, and prints what it made as JSON.
func stageChild(dir string) int {
	for {
		if _, err := os.Stat(os.Getenv("BEAMCTL_IMAGE_TEST_START")); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	o := Options{Ref: "example.com/w", CacheDir: dir, Platforms: []Platform{{
		Platform: amd64,
		Worker:   os.Getenv("BEAMCTL_IMAGE_TEST_WORKER"), WorkerSHA256: os.Getenv("BEAMCTL_IMAGE_TEST_WORKER_SHA256"),
		Boot: os.Getenv("BEAMCTL_IMAGE_TEST_BOOT"), BootSHA256: os.Getenv("BEAMCTL_IMAGE_TEST_BOOT_SHA256"),
	}}}
	out, err := stageOnce(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

func stageOnce(ctx context.Context, o Options) (stageOutput, error) {
	if err := o.defaults(); err != nil {
		return stageOutput{}, err
	}
	images, err := o.makeImages(ctx, nil)
	if err != nil {
		return stageOutput{}, err
	}
	img := images[0].img
	d, err := img.Digest()
	if err != nil {
		return stageOutput{}, err
	}
	out := stageOutput{Image: d.String()}
	layers, err := img.Layers()
	if err != nil {
		return stageOutput{}, err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return stageOutput{}, err
		}
		// As a push reads them: the bytes must be the digest's.
		r, err := l.Compressed()
		if err != nil {
			return stageOutput{}, err
		}
		s, err := digest.Reader(ctx, r)
		r.Close()
		if err != nil {
			return stageOutput{}, err
		}
		if "sha256:"+s.SHA256 != ld.String() {
			return stageOutput{}, fmt.Errorf("layer %s reads as %s", ld, s.SHA256)
		}
		out.Layers = append(out.Layers, ld.String())
	}
	return out, nil
}

// bigWorker writes a worker large enough that compressing it takes a
// while: two stages of it overlap.
func bigWorker(t *testing.T, dir string) (string, string) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 24<<20 {
		// Compressible, as code is, but not trivially.
		fmt.Fprintf(&b, "%x\n", r.Uint64()%4096)
	}
	return file(t, dir, "worker", b.String())
}

// TestLayerCacheTwoProcesses stages the same worker in two processes at
// once over one layer cache: both must make the same image, and the
// cache must hold only complete, valid layers, whoever won each race.
func TestLayerCacheTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 24 MiB twice")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files, cache := t.TempDir(), t.TempDir()
	worker, workerSum := bigWorker(t, files)
	boot, bootSum := file(t, files, "boot", "boot")
	start := filepath.Join(t.TempDir(), "start")

	outs := make([]stageOutput, 2)
	var wg sync.WaitGroup
	for i := range outs {
		cmd := exec.CommandContext(t.Context(), self)
		cmd.Env = append(os.Environ(), childCache+"="+cache, "BEAMCTL_IMAGE_TEST_START="+start,
			"BEAMCTL_IMAGE_TEST_WORKER="+worker, "BEAMCTL_IMAGE_TEST_WORKER_SHA256="+workerSum,
			"BEAMCTL_IMAGE_TEST_BOOT="+boot, "BEAMCTL_IMAGE_TEST_BOOT_SHA256="+bootSum)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Errorf("stage %d: %v\n%s", i, err, stderr.String())
				return
			}
			if err := json.Unmarshal(stdout.Bytes(), &outs[i]); err != nil {
				t.Errorf("stage %d printed %q: %v", i, stdout.String(), err)
			}
		})
	}
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if fmt.Sprint(outs[0]) != fmt.Sprint(outs[1]) || len(outs[0].Layers) != 3 {
		t.Fatalf("the two stages made %+v and %+v, want one image of three layers", outs[0], outs[1])
	}
	checkCache(t, filepath.Join(cache, "layers"))

	// A third stage, in this process, finds every layer made.
	o := Options{Ref: "example.com/w", CacheDir: cache, Platforms: []Platform{{Platform: amd64, Worker: worker, WorkerSHA256: workerSum, Boot: boot, BootSHA256: bootSum}}}
	before := blobs(t, filepath.Join(cache, "layers"))
	again, err := stageOnce(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(outs[0]) {
		t.Errorf("a later stage made %+v, want %+v", again, outs[0])
	}
	if after := blobs(t, filepath.Join(cache, "layers")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a later stage wrote layers again: %v, then %v", before, after)
	}
}

// blobs lists the cache's blobs with their modification times.
func blobs(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fi.ModTime()
	}
	return out
}

// checkCache fails unless every blob of the cache holds the bytes its name
// says, every record names a blob of its size, and nothing half-written
// is left.
func checkCache(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		s, err := digest.File(t.Context(), filepath.Join(dir, "blobs", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if s.SHA256+".tar.gz" != e.Name() {
			t.Errorf("blob %s holds bytes of sha256 %s", e.Name(), s.SHA256)
		}
	}
	records, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(records) == 0 {
		t.Error("no records in the cache")
	}
	for _, r := range records {
		data, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		var m layerMeta
		if err := json.Unmarshal(data, &m); err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, "blobs", strings.TrimPrefix(m.Digest, "sha256:")+".tar.gz"))
		if err != nil || fi.Size() != m.Size {
			t.Errorf("%s names a blob that is missing or of another size: %v", r, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".tmp-*"))
	more, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if left = append(left, more...); len(left) > 0 {
		t.Errorf("temporary files left in the cache: %v", left)
	}
}

// TestLayerCacheValidates corrupts a cached layer without changing its
// size, as a disk or an older beamctl might: the next stage must notice,
// make the layer again, and give the image it gave before. An untouched
// layer is trusted without being read.
func TestLayerCacheValidates(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	o := Options{Ref: "example.com/w", CacheDir: cache, Platforms: platforms(t, dir, amd64)}
	want, err := stageOnce(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	worker := filepath.Join(cache, "layers", "blobs", strings.TrimPrefix(want.Layers[2], "sha256:")+".tar.gz")
	// Untouched, the blob is trusted by its stamp: not read again.
	o.Digests = digest.NewCache()
	if again, err := stageOnce(t.Context(), o); err != nil || fmt.Sprint(again) != fmt.Sprint(want) {
		t.Fatalf("a second stage made %+v (%v), want %+v", again, err, want)
	}
	if n := o.Digests.Hashed(worker); n != 0 {
		t.Errorf("an untouched cached layer was hashed again (%d bytes)", n)
	}
	data, err := os.ReadFile(worker)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(worker, data, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Digests = digest.NewCache()
	got, err := stageOnce(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the corruption the stage made %+v, want %+v", got, want)
	}
	checkCache(t, filepath.Join(cache, "layers"))
}

// TestLayerKey checks that a layer's key follows its content, not only
// sizes and names: root certificates of a new bundle with the same length
// must not reuse the old layer.
func TestLayerKey(t *testing.T) {
	epoch := time.Unix(0, 0)
	base := []entry{{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: []byte("old roots")}}
	k := layerKey(base, epoch)
	if layerKey(base, epoch) != k {
		t.Fatal("the same entries gave different keys")
	}
	for name, e := range map[string][]entry{
		"content": {{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: []byte("new roots")}},
		"mode":    {{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o600, data: []byte("old roots")}},
		"name":    {{name: "etc/ssl/certs/ca-bundle.crt", mode: 0o644, data: []byte("old roots")}},
		"owner":   {{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, uid: 1, data: []byte("old roots")}},
		"file":    {{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, file: "/x", size: 9, sha256: strings.Repeat("a", 64)}},
	} {
		if layerKey(e, epoch) == k {
			t.Errorf("%s: the key did not change", name)
		}
	}
	if layerKey(base, epoch.Add(time.Second)) == k {
		t.Error("time: the key did not change")
	}
}

// The digests of the golden image: beamctl's base and a fixed boot and
// worker, for linux/amd64 at the epoch. They change when the bytes of
// every image beamctl makes change: a new root certificate bundle
// (golang.org/x/crypto/x509roots/fallback), another gzip implementation
// or level (github.com/klauspost/compress), or a change to the layers'
// tar or the image configuration. Such a change must be a decision: when
// the test fails, check that the dependency bump or the change explains
// each digest that moved, then set the constants to the ones the failure
// prints and say why in the commit.
const (
	goldenSystem = "sha256:7b7e51f1cbd16f7264f53b6475ba57d7cb837e21eb5580ff8706649b63681325"
	goldenBoot   = "sha256:83950f71a748e5632a1f393140676737f40def0917661cde7566f49f769bd28a"
	goldenWorker = "sha256:de27868f58a0300dfe4e90806cafae72731d17f2635ec266703566850435a7bb"
	goldenImage  = "sha256:568ff34dedaf4096659c9dc4f749b440b754a3008e43a07e27479f80f930a86d"
)

// TestGoldenImageDigest makes the image of a fixed worker and boot and
// checks its digests against the recorded ones.
func TestGoldenImageDigest(t *testing.T) {
	dir := t.TempDir()
	w, ws := file(t, dir, "worker", "#!/bin/sh\necho beamctl golden worker\n")
	b, bs := file(t, dir, "boot", "#!/bin/sh\necho beamctl golden boot\n")
	o := Options{Ref: "example.com/golden", CacheDir: t.TempDir(), Platforms: []Platform{{Platform: amd64, Worker: w, WorkerSHA256: ws, Boot: b, BootSHA256: bs}}}
	got, err := stageOnce(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ what, got, want string }{
		{"the base layer (users, CA certificates: x509roots/fallback, gzip: klauspost/compress)", got.Layers[0], goldenSystem},
		{"the boot layer (tar and gzip)", got.Layers[1], goldenBoot},
		{"the worker layer (tar and gzip)", got.Layers[2], goldenWorker},
		{"the image (its layers and configuration)", got.Image, goldenImage},
	} {
		if tc.got != tc.want {
			t.Errorf("%d. %s is %s, recorded %s", i+1, tc.what, tc.got, tc.want)
		}
	}
	if t.Failed() {
		t.Logf("if the change is meant, record the new digests (see the comment on goldenImage):\n\tgoldenSystem = %q\n\tgoldenBoot   = %q\n\tgoldenWorker = %q\n\tgoldenImage  = %q",
			got.Layers[0], got.Layers[1], got.Layers[2], got.Image)
	}
}

// TestLayerRefusesChangedFile makes a layer of a file that no longer
// holds the content it was verified to have: the layer must not be cached
// under the old content's key.
func TestLayerRefusesChangedFile(t *testing.T) {
	dir := t.TempDir()
	p, _ := file(t, dir, "worker", "new worker")
	_, oldSum := file(t, t.TempDir(), "worker", "old worker")
	c := layerCache{dir: t.TempDir(), digests: digest.NewCache(), log: slog.New(slog.DiscardHandler)}
	e := entry{name: "opt/apache/beam/worker", mode: 0o755, file: p, size: int64(len("new worker")), sha256: oldSum}
	if _, err := c.layer(t.Context(), []entry{e}, time.Unix(0, 0)); err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("layer = %v, want the file refused as changed", err)
	}
	if records, _ := filepath.Glob(filepath.Join(c.dir, "*.json")); len(records) > 0 {
		t.Errorf("a layer of the changed file was recorded: %v", records)
	}
}

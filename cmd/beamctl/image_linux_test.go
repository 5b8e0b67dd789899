package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-delve/delve/service/rpc2"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"github.com/beamctl/beamctl/internal/enginetest"
	"github.com/beamctl/beamctl/internal/registrytest"
	"github.com/beamctl/beamctl/internal/testenv"
	"github.com/beamctl/beamctl/stage/image"
	"github.com/beamctl/beamctl/stage/stagetest"
)

// chrootImageTest skips a test of images it runs with chroot (why it is
// slow: skipped in -short mode), unless root, and starts its registry.
func chrootImageTest(t *testing.T, why string) *registrytest.Registry {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
	if os.Getuid() != 0 {
		testenv.Skip(t, testenv.Root, "runs the image's filesystem with chroot, which needs root")
	}
	return registrytest.Start(t)
}

// TestWorkerImage pushes worker images of wordcount for this machine and
// linux/arm64 to a real registry, reads them back, and runs the amd64 one
// as prism's worker pool and as its process environment: its entrypoint
// and baked worker, from the image's own filesystem, with nothing staged.
func TestWorkerImage(t *testing.T) {
	t.Parallel()
	reg := chrootImageTest(t, "builds wordcount for two platforms")
	dist, repo, first := stageWordcount(t, reg)

	// Read back from the registry: an index, one image per platform, each
	// with the entrypoint, the user, the worker's digest and the labels.
	idx, err := remote.Index(mustParse(t, repo+":v1"))
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{}
	for i, e := range registrytest.Images(t, idx) {
		m, cf := e.Desc, e.Config
		p := m.Platform.OS + "/" + m.Platform.Architecture
		want := first.Platforms[i]
		if p != want.Platform || cf.OS+"/"+cf.Architecture != p || m.Digest.String() != want.Digest {
			t.Errorf("index entry %d is %s %s (config %s/%s), want %s %s", i, p, m.Digest, cf.OS, cf.Architecture, want.Platform, want.Digest)
		}
		c := cf.Config
		if !slices.Equal(c.Entrypoint, []string{image.BootPath}) || c.User == "" || c.User == "0" ||
			c.Labels[image.LabelWorkerSHA256] != want.WorkerSHA256 || c.Labels["team"] != "data" || c.Labels[image.LabelBeamVersion] == "" {
			t.Errorf("%s config: entrypoint %q, user %q, labels %v", p, c.Entrypoint, c.User, c.Labels)
		}
		images[p] = e.Image
	}

	// The same build from another directory gives the same image, and the
	// registry is sent nothing; the layers go to the cache it is given.
	before := reg.BlobUploads()
	cache := t.TempDir()
	again := stageImage(t, copyDist(t, dist), "--image", repo+":v1", "--label", "team=data", "--cache-dir", cache)
	if again.Digest != first.Digest || again.BytesUploaded != 0 || reg.BlobUploads() != before {
		t.Errorf("second stage: digest %s (first %s), %d bytes and %d blobs uploaded", again.Digest, first.Digest, again.BytesUploaded, reg.BlobUploads()-before)
	}
	if layers, _ := os.ReadDir(filepath.Join(cache, "layers")); len(layers) == 0 {
		t.Errorf("stage --cache-dir %s kept no layers there", cache)
	}

	root := imageRoot(t, images["linux/amd64"])
	cf, err := images["linux/amd64"].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	prism := startPrism(t)
	byDigest := first.Image

	t.Run("worker pool", func(t *testing.T) {
		t.Parallel()
		_, addr := startPoolCommand(t, cf.Config.Env, "chroot", "--userspec="+cf.Config.User+":"+cf.Config.User, root, image.BootPath, "--worker_pool")
		submitImageJob(t, prism, root, t.TempDir(), dist, "linux/amd64", "--environment", "external", "--environment-config", addr, "--image", byDigest)
	})
	t.Run("process", func(t *testing.T) {
		t.Parallel()
		script := bootInImage(t, root, cf)
		submitImageJob(t, prism, root, t.TempDir(), dist, "linux/amd64", "--environment", "process", "--environment-config", script, "--image", byDigest)
	})
	t.Run("arm64 process", func(t *testing.T) {
		t.Parallel()
		// The kernel runs the arm64 boot, and the worker it starts, through
		// qemu-user, as in a container on an amd64 machine.
		arm64Binfmt(t)
		img := images["linux/arm64"]
		root := imageRoot(t, img)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		submitImageJob(t, prism, root, t.TempDir(), dist, "linux/arm64", "--environment", "process", "--environment-config", bootInImage(t, root, cf), "--image", byDigest)
	})
	t.Run("another build", func(t *testing.T) {
		t.Parallel()
		// A build whose worker differs from the image's.
		other := filepath.Join(t.TempDir(), "dist")
		if r := beamctl(t, "build", "../../examples/wordcount", "--boot", "--target", "linux/amd64", "--ldflags", "-X=main.imageTest=1", "--out", other); r.code != 0 {
			t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
		}
		// Given the image by digest, submit checks it first.
		r := beamctl(t, "submit", other, "--endpoint", prism.Endpoint, "--environment", "external", "--environment-config", "127.0.0.1:1", "--image", byDigest, "--", "--input=x", "--output=y")
		if r.code != exitUsage || !strings.Contains(r.stderr, "holds worker sha256 "+first.Platforms[0].WorkerSHA256) {
			t.Errorf("submit with another build's image: exit %d, stderr %q", r.code, r.stderr)
		}
		// A pool still running the old image refuses the new job's worker.
		pool, addr := startPoolCommand(t, cf.Config.Env, "chroot", "--userspec="+cf.Config.User+":"+cf.Config.User, root, image.BootPath, "--worker_pool")
		v2 := stageImage(t, other, "--image", repo+":v2")
		dir := t.TempDir()
		r = beamctl(t, "submit", other, "--endpoint", prism.Endpoint, "--environment", "external", "--environment-config", addr,
			"--image", v2.Image, "--detach", "--", "--input="+filepath.Join(dir, "in"), "--output="+filepath.Join(dir, "out"))
		if r.code != 0 {
			t.Fatalf("submit: exit %d\n%s", r.code, r.stderr)
		}
		job := strings.TrimSpace(r.stdout)
		defer beamctl(t, "jobs", "cancel", job, "--endpoint", prism.Endpoint)
		want := fmt.Sprintf("the image's worker binary (sha256 %s) is not the job's (sha256 %s)", first.Platforms[0].WorkerSHA256, v2.Platforms[0].WorkerSHA256)
		if !pool.waitFor(want, 2*time.Minute) {
			t.Errorf("the pool did not refuse the worker with %q:\n%s", want, pool.output())
		}
	})
}

// TestWorkerImageDocker runs wordcount's worker image in prism's DOCKER
// environment, as a runner would in production: prism asks a real
// container engine, through the Docker API, to pull the image from the
// registry and start a container per worker, whose entrypoint boots the
// worker baked into the image.
func TestWorkerImageDocker(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds wordcount for two platforms")
	}
	reg := registrytest.Start(t)
	// The containers see this directory, where the jobs' files are, at the
	// same path.
	shared := t.TempDir()
	engine := enginetest.Start(t, enginetest.Options{Insecure: []string{reg.Host}, Volumes: []string{shared}})
	t.Cleanup(func() {
		// Where a pull or a container's start failed: prism logs only
		// that the environment failed.
		if t.Failed() {
			t.Logf("container engine:\n%s", engine.Output())
		}
	})
	dist, repo, staged := stageWordcount(t, reg)
	prism := startPrism(t, "DOCKER_HOST="+engine.Host)

	t.Run("amd64", func(t *testing.T) {
		// By the index's digest: the engine picks this machine's image.
		submitImageJob(t, prism, "", jobDir(t, shared), dist, "linux/amd64", "--environment", "docker", "--image", staged.Image)
	})
	t.Run("arm64", func(t *testing.T) {
		// The engine runs the image it is given, whatever its platform;
		// the kernel runs its boot and worker through qemu-user.
		arm64Binfmt(t)
		i := slices.IndexFunc(staged.Platforms, func(p stagePlatform) bool { return p.Platform == "linux/arm64" })
		if i < 0 {
			t.Fatalf("no linux/arm64 image in %+v", staged.Platforms)
		}
		submitImageJob(t, prism, "", jobDir(t, shared), dist, "linux/arm64", "--environment", "docker", "--image", repo+"@"+staged.Platforms[i].Digest)
	})
}

// jobDir makes a directory for a job's files in shared, open to the image's
// user, which is not root.
func jobDir(t *testing.T, shared string) string {
	t.Helper()
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(shared, "job-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stageWordcount builds wordcount with boots for linux/amd64 and
// linux/arm64 and stages its worker image to reg as team/wordcount:v1.
func stageWordcount(t *testing.T, reg *registrytest.Registry) (dist, repo string, staged stageJSON) {
	t.Helper()
	dist = filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", "../../examples/wordcount", "--boot", "--target", "linux/amd64,linux/arm64", "--out", dist); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	repo = reg.Host + "/team/wordcount"
	staged = stageImage(t, dist, "--image", repo+":v1", "--label", "team=data")
	if !strings.HasPrefix(staged.Image, repo+"@sha256:") || len(staged.Platforms) != 2 || staged.BytesUploaded == 0 || len(staged.SBOM) != 2 {
		t.Fatalf("stage result %+v", staged)
	}
	return dist, repo, staged
}

func quoteAll(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		out[i] = "'" + strings.ReplaceAll(kv, "'", `'\''`) + "'"
	}
	return out
}

// bootInImage writes a script that runs the image's entrypoint in root
// with the image's environment and user, as a container would: prism's
// process environment executes it.
func bootInImage(t *testing.T, root string, cf *v1.ConfigFile) string {
	t.Helper()
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "boot-in-image")
	body := fmt.Sprintf("#!/bin/sh\nexec env -i %s %s --userspec=%s:%s %s %s \"$@\"\n",
		strings.Join(quoteAll(cf.Config.Env), " "), chroot, cf.Config.User, cf.Config.User, root, image.BootPath)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// arm64Binfmt has the kernel run arm64 binaries through qemu-user, even in
// a chroot (the interpreter is opened at registration), for the test. The
// registration is the kernel's, one for every test running at once: the
// first test to need it makes it and the last one done removes it.
func arm64Binfmt(t *testing.T) {
	t.Helper()
	binfmt.Lock()
	defer binfmt.Unlock()
	if binfmt.users == 0 {
		if err := registerArm64(); err != nil {
			testenv.Skip(t, testenv.Qemu, "%v", err)
		}
	}
	binfmt.users++
	t.Cleanup(func() {
		binfmt.Lock()
		defer binfmt.Unlock()
		if binfmt.users--; binfmt.users == 0 && binfmt.ours {
			// Other tests check what happens where no emulator is
			// registered.
			os.WriteFile(filepath.Join(binfmtDir, "qemu-aarch64"), []byte("-1"), 0)
			binfmt.ours = false
		}
	})
}

const binfmtDir = "/proc/sys/fs/binfmt_misc"

var binfmt struct {
	sync.Mutex
	users int
	// ours is whether the tests registered the handler, and so remove it.
	ours bool
}

func registerArm64() error {
	if _, err := os.Stat(filepath.Join(binfmtDir, "qemu-aarch64")); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		if err := unix.Mount("binfmt_misc", binfmtDir, "binfmt_misc", 0, ""); err != nil {
			return fmt.Errorf("cannot mount binfmt_misc to run arm64 binaries: %v", err)
		}
	}
	conf, err := os.ReadFile("/usr/lib/binfmt.d/qemu-aarch64.conf")
	if err != nil {
		return fmt.Errorf("qemu-user-static's binfmt entry is not installed: %v", err)
	}
	if err := os.WriteFile(filepath.Join(binfmtDir, "register"), bytes.TrimSpace(conf), 0); err != nil {
		return fmt.Errorf("cannot register qemu-user with binfmt_misc: %v", err)
	}
	binfmt.ours = true
	return nil
}

// submitImageJob runs wordcount on prism with workers from the image, its
// files in dir, and checks the counts and that nothing was staged. The
// workers see dir inside root, where the image is unpacked, or, with root
// "", where it is: a container engine shares it.
func submitImageJob(t *testing.T, prism *stagetest.Prism, root, dir, dist, target string, args ...string) {
	t.Helper()
	in := filepath.Join(dir, "input.txt")
	data, err := os.ReadFile(wordcountInput)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{dir}
	if root != "" {
		// The job's files live at the same path inside the image's
		// filesystem as outside.
		dirs = append(dirs, filepath.Join(root, dir))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(d, "out"), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(d, "out"), 0o777)
		if err := os.WriteFile(filepath.Join(d, "input.txt"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out", "counts.txt")
	full := append(append([]string{"submit", dist, "--target", target, "--endpoint", prism.Endpoint, "--output", "json"}, args...), "--", "--input="+in, "--output="+out)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, beamctlBinary(t), full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("beamctl %v: %v\n%s\nprism:\n%s", full, err, stderr.String(), prism.Output())
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var res struct {
		State       string `json:"state"`
		StagedBytes *int64 `json:"staged_bytes"`
		Image       string `json:"image"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if res.State != "DONE" || res.StagedBytes == nil || *res.StagedBytes != 0 {
		t.Errorf("job ended %s with staged_bytes %v", res.State, res.StagedBytes)
	}
	// Whatever the environment, the workers started from the image.
	if i := slices.Index(args, "--image"); i >= 0 && !strings.HasPrefix(res.Image, strings.Split(args[i+1], "@")[0]+"@sha256:") {
		t.Errorf("the result names image %q, want %s by digest", res.Image, args[i+1])
	}
	if got, want := readSorted(t, filepath.Join(root, out)), countWords(t, wordcountInput); !slices.Equal(got, want) {
		t.Errorf("counts differ:\n got %v\nwant %v", got, want)
	}
}

// imageRoot unpacks img's filesystem as a container runtime would: with
// /proc, /dev and /etc/hosts of its own, removed when the test ends.
func imageRoot(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			continue
		}
		if err := os.Chown(p, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, os.FileMode(h.Mode).Perm()|modeBits(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", 0, ""); err != nil {
		testenv.Skip(t, testenv.Root, "cannot mount /proc for the image's root: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(root, "proc"), unix.MNT_DETACH) })
	if err := unix.Mount("/dev", filepath.Join(root, "dev"), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(root, "dev"), unix.MNT_DETACH) })
	return root
}

func modeBits(m int64) os.FileMode {
	var out os.FileMode
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

// TestWorkerImageDebug stages a debug build: the image carries Delve, and
// its entrypoint as prism's worker pool starts the worker under it, stopped
// until a debugger attaches, where the runner is.
func TestWorkerImageDebug(t *testing.T) {
	t.Parallel()
	reg := chrootImageTest(t, "builds wordcount without optimisation")
	dist := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", "../../examples/wordcount", "--boot", "--debug", "--target", "linux/amd64", "--out", dist); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	staged := stageImage(t, dist, "--image", reg.Host+"/team/wordcount-debug:v1")
	img, err := remote.Image(mustParse(t, staged.Image))
	if err != nil {
		t.Fatal(err)
	}
	root := imageRoot(t, img)
	if fi, err := os.Stat(filepath.Join(root, image.DebuggerPath)); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("the image has no executable %s: %v", image.DebuggerPath, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	prism := startPrism(t)
	first, ports := freePorts(t, 4)
	pool, addr := startPoolCommand(t, cf.Config.Env, "chroot", "--userspec="+cf.Config.User+":"+cf.Config.User, root, image.BootPath, "--worker_pool", "--debug", "--debug-addr", ports, "--allow-other-users")
	attached := attachOnce(pool, first, func(c *rpc2.RPCClient) error {
		if _, err := c.ListSources(".*wordcount.*"); err != nil {
			return fmt.Errorf("the debugger cannot read the worker's sources: %w", err)
		}
		return nil
	})
	submitImageJob(t, prism, root, t.TempDir(), dist, "linux/amd64", "--environment", "external", "--environment-config", addr, "--image", staged.Image)
	if err := <-attached; err != nil {
		t.Error(err)
	}
}

package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/registrytest"
	"github.com/beamctl/beamctl/internal/testenv"
	"github.com/beamctl/beamctl/stage/image"
	"github.com/beamctl/beamctl/wrap"
)

// cgoWords is a pipeline whose DoFn formats its output in C.
const cgoWords = "../../testdata/cgowords"

// arm64CC is Debian's C cross compiler for linux/arm64, which scripts/test
// installs with the arm64 glibc it links against.
func arm64CC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil {
		testenv.Skip(t, testenv.Tools, "aarch64-linux-gnu-gcc is not installed; install it with: apt-get install gcc-aarch64-linux-gnu")
	}
}

// runCGOWords runs cgowords on the embedded runner with args and checks
// its counts against an independent count of the input.
func runCGOWords(t *testing.T, dist string, args ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "counts.txt")
	full := append(append([]string{"run", cgoWords, "--out", dist, "--output", "json"}, args...), "--", "--input="+abs(t, wordcountInput), "--output="+out)
	r := beamctl(t, full...)
	if r.code != 0 {
		t.Fatalf("beamctl %v: exit %d\n%s", full, r.code, r.stderr)
	}
	if got, want := readSorted(t, out), countWords(t, wordcountInput); !slices.Equal(got, want) {
		t.Errorf("counts differ from an independent count:\n got %v\nwant %v", got, want)
	}
}

// elfLink reads how the binary at path loads the C library, without
// beamctl's reader: its interpreter ("" for a static binary) and the
// shared libraries it needs.
func elfLink(t *testing.T, path string) (interp string, libs []string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	libs, err = f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	return interp, libs
}

func readManifest(t *testing.T, dist string) *build.Manifest {
	t.Helper()
	m, err := build.ReadManifest(dist)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCGORefusals checks the refusals before anything compiles: a
// pipeline that needs cgo built without it, and a target without a C
// compiler.
func TestCGORefusals(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("zig"); err == nil {
		t.Skip("zig is on PATH and builds C for every target")
	}
	if _, err := exec.LookPath("s390x-linux-gnu-gcc"); err == nil {
		t.Skip("s390x-linux-gnu-gcc is installed")
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"without cgo", nil, []string{"package example.com/cgowords uses cgo (import \"C\")", "--cgo"}},
		{"no cross compiler", []string{"--cgo", "--target", "linux/s390x"}, []string{"linux/s390x", "apt-get install gcc-s390x-linux-gnu", "--cc linux/s390x=COMMAND"}},
		{"named compiler missing", []string{"--cgo", "--target", "linux/arm64", "--cc", "linux/arm64=/nonexistent/cc"}, []string{`"/nonexistent/cc", is not installed`, "--cc linux/arm64=COMMAND"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "dist")
			r := beamctl(t, append([]string{"build", cgoWords, "--out", out}, tc.args...)...)
			if r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("exit %d, want %d and one line:\n%s", r.code, exitUsage, r.stderr)
			}
			checkText(t, "stderr", r.stderr, tc.want, []string{"undefined", "goroutine"}, 0)
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the refused build wrote %s", out)
			}
		})
	}
	// doctor names the missing compiler the same way.
	r := beamctl(t, "doctor", "--cgo", "--target", "linux/s390x")
	checkText(t, "doctor", r.stdout, []string{"C compiler linux/s390x", "apt-get install gcc-s390x-linux-gnu"}, nil, 0)
	if r.code != 1 {
		t.Errorf("doctor --cgo without a compiler: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCGOStatic builds cgowords with --cgo for this machine and
// linux/arm64: static workers that run on the embedded runner for both,
// that rebuild to the same bytes elsewhere, and whose arm64 image on
// beamctl's own base runs as the upstream prism's worker pool.
func TestCGOStatic(t *testing.T) {
	t.Parallel()
	reg := chrootImageTest(t, "builds a cgo pipeline for two platforms")
	arm64CC(t)
	dist := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", cgoWords, "--cgo", "--boot", "--target", "linux/amd64,linux/arm64", "--out", dist); r.code != 0 {
		t.Fatalf("build --cgo: exit %d\n%s", r.code, r.stderr)
	}
	m := readManifest(t, dist)
	if !m.Flags.CGO || m.Flags.CGOLink != "static" {
		t.Errorf("manifest flags cgo %v, cgoLink %q; want cgo, static", m.Flags.CGO, m.Flags.CGOLink)
	}
	workers := m.Workers()
	if len(workers) != 2 {
		t.Fatalf("manifest has %d workers, want 2: %+v", len(workers), workers)
	}
	for _, w := range workers {
		if w.CGO == nil || w.CGO.Link != "static" || w.CGO.Interpreter != "" || w.CGO.CC == "" {
			t.Errorf("%s worker's cgo record %+v, want static with its compiler", w.Platform, w.CGO)
		}
		if interp, libs := elfLink(t, filepath.Join(dist, w.File)); interp != "" || len(libs) != 0 {
			t.Errorf("%s worker has interpreter %q and needs %v; want a static binary", w.Platform, interp, libs)
		}
	}
	if w := manifestWorker(t, m, "linux/arm64"); !strings.Contains(w.CGO.CC, "aarch64-linux-gnu-gcc") {
		t.Errorf("arm64 worker built with %q, want Debian's cross compiler", w.CGO.CC)
	}

	t.Run("embedded", func(t *testing.T) {
		for _, target := range []string{"host", "linux/arm64"} {
			t.Run(strings.ReplaceAll(target, "/", "-"), func(t *testing.T) {
				runCGOWords(t, t.TempDir(), "--cgo", "--target", target)
			})
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		// The same module in another directory, with a cache of beamctl's
		// own, links both workers again: the same bytes.
		mod := filepath.Join(t.TempDir(), "elsewhere", "cgowords")
		if err := os.MkdirAll(filepath.Dir(mod), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-R", cgoWords, mod).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		again := filepath.Join(t.TempDir(), "dist")
		if r := beamctl(t, "build", mod, "--cgo", "--target", "linux/amd64,linux/arm64", "--cache-dir", t.TempDir(), "--out", again); r.code != 0 {
			t.Fatalf("build --cgo elsewhere: exit %d\n%s", r.code, r.stderr)
		}
		for _, w := range readManifest(t, again).Workers() {
			if first := manifestWorker(t, m, w.Platform.String()); w.SHA256 != first.SHA256 {
				t.Errorf("%s worker rebuilt elsewhere is sha256 %s, first %s", w.Platform, w.SHA256, first.SHA256)
			}
		}
	})

	t.Run("image", func(t *testing.T) {
		// The arm64 image on beamctl's base, which has no C library, runs
		// the job as prism's worker pool from its own filesystem, under
		// qemu-user with no sysroot.
		staged := stageImage(t, dist, "--image", reg.Host+"/team/cgowords:v1")
		var arm64 string
		for _, p := range staged.Platforms {
			if p.Platform == "linux/arm64" {
				arm64 = reg.Host + "/team/cgowords@" + p.Digest
			}
		}
		if arm64 == "" {
			t.Fatalf("stage result has no linux/arm64 image: %+v", staged)
		}
		arm64Binfmt(t)
		img := imageAt(t, arm64)
		root := imageRoot(t, img)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		_, addr := startPoolCommand(t, cf.Config.Env, "chroot", "--userspec="+cf.Config.User+":"+cf.Config.User, root, image.BootPath, "--worker_pool")
		submitImageJob(t, startPrism(t), root, t.TempDir(), dist, "linux/arm64", "--environment", "external", "--environment-config", addr, "--image", staged.Image)
	})
}

// TestCGODynamic builds cgowords's arm64 worker against the target's
// glibc: it runs under qemu-user with the cross compiler's sysroot, and
// staging refuses a base that cannot load it.
func TestCGODynamic(t *testing.T) {
	t.Parallel()
	reg := chrootImageTest(t, "builds a cgo pipeline for linux/arm64")
	arm64CC(t)
	runCGOWords(t, t.TempDir(), "--cgo=dynamic", "--target", "linux/arm64")

	dist := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", cgoWords, "--cgo=dynamic", "--boot", "--target", "linux/arm64", "--out", dist); r.code != 0 {
		t.Fatalf("build --cgo=dynamic: exit %d\n%s", r.code, r.stderr)
	}
	m := readManifest(t, dist)
	w := manifestWorker(t, m, "linux/arm64")
	interp, libs := elfLink(t, filepath.Join(dist, w.File))
	if m.Flags.CGOLink != "dynamic" || w.CGO == nil || w.CGO.Link != "dynamic" || w.CGO.Interpreter != interp || interp != "/lib/ld-linux-aarch64.so.1" || !slices.Contains(libs, "libc.so.6") {
		t.Fatalf("manifest cgoLink %q, worker cgo %+v; the binary has interpreter %q and needs %v", m.Flags.CGOLink, w.CGO, interp, libs)
	}
	needs := w.CGO.GLIBC
	if needs == "" || needs == "2.17" {
		t.Fatalf("the worker needs glibc %q; the test's old base must be older", needs)
	}

	refused := func(t *testing.T, base string, want ...string) {
		t.Helper()
		args := []string{"stage", dist, "--image", reg.Host + "/team/cgodynamic:v1"}
		if base != "" {
			args = append(args, "--base", base)
		}
		r := beamctl(t, args...)
		if r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("stage --base %q: exit %d, want %d and one line:\n%s", base, r.code, exitUsage, r.stderr)
		}
		checkText(t, "stderr", r.stderr, want, nil, 0)
	}
	refused(t, "", "linked dynamically", "beamctl's own base image has no C library", "glibc "+needs, "--base", "--cgo")

	// An arm64 base whose libc.so.6 defines GLIBC_2.17 and nothing newer.
	stub := filepath.Join(t.TempDir(), "libc.so.6")
	src, vers := stub+".c", stub+".map"
	os.WriteFile(src, []byte("int beamctl_stub(void) { return 0; }\n"), 0o644)
	os.WriteFile(vers, []byte("GLIBC_2.17 { global: beamctl_stub; local: *; };\n"), 0o644)
	if out, err := exec.Command("aarch64-linux-gnu-gcc", "-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libc.so.6", "-Wl,--version-script="+vers, "-o", stub, src).CombinedOutput(); err != nil {
		t.Fatalf("building the old libc: %v\n%s", err, out)
	}
	old := pushBase(t, reg, "old-glibc", map[string]string{
		"lib/ld-linux-aarch64.so.1":       "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
		"lib/aarch64-linux-gnu/libc.so.6": stub,
	})
	refused(t, old, "has glibc 2.17", "needs glibc "+needs, "--base")
	noLoader := pushBase(t, reg, "no-loader", map[string]string{"lib/aarch64-linux-gnu/libc.so.6": stub})
	refused(t, noLoader, "has no /lib/ld-linux-aarch64.so.1")

	// The cross compiler's own glibc, as a Debian base would carry it,
	// loads the worker.
	sysroot := pushBase(t, reg, "sysroot", map[string]string{
		"lib/ld-linux-aarch64.so.1":       "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
		"lib/aarch64-linux-gnu/libc.so.6": "/usr/aarch64-linux-gnu/lib/libc.so.6",
	})
	if r := beamctl(t, "stage", dist, "--image", reg.Host+"/team/cgodynamic:v1", "--base", sysroot); r.code != 0 {
		t.Errorf("stage on a base with the worker's glibc: exit %d\n%s", r.code, r.stderr)
	}
}

// pushBase pushes a linux/arm64 image holding files (path in the image to
// file here) to reg and returns its reference by digest.
func pushBase(t *testing.T, reg *registrytest.Registry, name string, files map[string]string) string {
	t.Helper()
	data := map[string][]byte{}
	for in, here := range files {
		b, err := os.ReadFile(here)
		if err != nil {
			t.Fatal(err)
		}
		data[in] = b
	}
	layer, err := crane.Layer(data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "arm64", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatal(err)
	}
	ref := mustParse(t, reg.Host+"/base/"+name+":v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return reg.Host + "/base/" + name + "@" + d.String()
}

// TestTestCGO runs a package whose DoFn calls C with beamctl test: refused
// without --cgo, and with it run on a static arm64 worker under qemu-user.
func TestTestCGO(t *testing.T) {
	t.Parallel()
	arm64CC(t)
	if _, err := wrap.Emulator("linux", "arm64"); err != nil {
		testenv.Skip(t, testenv.Qemu, "%v", err)
	}
	r := beamctlProcess(t, "test", pipetests+"cgoformat")
	if r.code != exitUsage || !strings.Contains(r.stderr, "package github.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/cgoformat uses cgo") {
		t.Errorf("test without --cgo: exit %d, want %d and the refusal\n%s%s", r.code, exitUsage, r.stdout, r.stderr)
	}
	r = beamctlProcess(t, "test", "--cgo", "--target", "linux/arm64", pipetests+"cgoformat", "--", "-arch=arm64")
	if r.code != 0 || !strings.Contains(r.stdout, "ok  \tgithub.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/cgoformat") {
		t.Errorf("test --cgo --target linux/arm64: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCGODependencyOnRebuild adds a dependency that needs cgo to a
// pipeline built before: the rebuild is refused in one line naming it,
// not with the compiler's errors.
func TestCGODependencyOnRebuild(t *testing.T) {
	t.Parallel()
	w := newWatched(t)
	out := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", w.mod, "--target", "host", "--out", out); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.Mkdir(filepath.Join(w.mod, "cdep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"cdep/cdep.go": "package cdep\n\n// int one(void) { return 1; }\nimport \"C\"\n\nfunc One() int { return int(C.one()) }\n",
		"cdep.go":      "package main\n\nimport _ \"example.com/watched/cdep\"\n",
	} {
		if err := os.WriteFile(filepath.Join(w.mod, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Progress lines come first, as the compiles had started; the error
	// is the last line, and the compiler's words are not shown.
	r := beamctl(t, "build", w.mod, "--target", "host", "--out", out)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; r.code != exitUsage || !strings.Contains(last, "package example.com/watched/cdep uses cgo") || !strings.Contains(last, "--cgo") {
		t.Errorf("rebuild with a cgo dependency: exit %d, want %d and the refusal last:\n%s", r.code, exitUsage, r.stderr)
	}
	checkText(t, "stderr", r.stderr, nil, []string{"build constraints exclude", "undefined"}, 0)
}

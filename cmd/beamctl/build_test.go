package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beamctl/beamctl/build"
)

var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
	"arm":   elf.EM_ARM,
	"386":   elf.EM_386,
}

func buildJSON(t *testing.T, args ...string) *build.Manifest {
	t.Helper()
	r := beamctl(t, append([]string{"build", "--output", "json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("beamctl build %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var m build.Manifest
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("--output json printed %q: %v", r.stdout, err)
	}
	return &m
}

func TestBuildEndToEnd(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("checks ELF binaries")
	}
	for _, tc := range []struct {
		name, pkg, module string
	}{
		{"wordcount", "../../examples/wordcount", "github.com/beamctl/beamctl"},
		{"linestats", "../../examples/linestats", "example.com/linestats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			m := buildJSON(t, tc.pkg, "--target", "host,linux/arm64", "--out", out)

			if m.Module != tc.module || m.BeamVersion != "v2.77.0" || m.GoVersion != runtime.Version() || m.Schema != 1 {
				t.Errorf("manifest module %q beam %q go %q schema %d", m.Module, m.BeamVersion, m.GoVersion, m.Schema)
			}
			onDisk, err := build.ReadManifest(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(onDisk.Binaries) != 3 {
				t.Fatalf("manifest lists %d binaries, want a launcher and two workers", len(onDisk.Binaries))
			}
			for _, b := range onDisk.Binaries {
				path := filepath.Join(out, b.File)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(data)
				if hex.EncodeToString(sum[:]) != b.SHA256 || int64(len(data)) != b.Size {
					t.Errorf("%s: sha256/size on disk differ from the manifest", b.File)
				}
				f, err := elf.NewFile(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("%s is not ELF: %v", b.File, err)
				}
				if f.Machine != elfMachine[b.Platform.Arch] {
					t.Errorf("%s: ELF machine %v, want %v", b.File, f.Machine, elfMachine[b.Platform.Arch])
				}
				stripped := f.Section(".symtab") == nil
				if stripped != (b.Role == build.RoleWorker) {
					t.Errorf("%s (%s): stripped = %v", b.File, b.Role, stripped)
				}
			}
			host := build.HostPlatform()
			launcher, ok := onDisk.Launcher(host)
			if !ok || launcher.File != tc.name+"-launcher-"+host.Suffix() {
				t.Fatalf("no launcher for %v in %+v", host, onDisk.Binaries)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			help, _ := exec.CommandContext(ctx, filepath.Join(out, launcher.File), "--help").CombinedOutput()
			if !strings.Contains(string(help), "-input") {
				t.Errorf("launcher --help printed no -input flag:\n%s", help)
			}

			// Nothing changed: every binary is reused, and --out is rewritten
			// with the same content.
			r := beamctl(t, "build", tc.pkg, "--target", "host,linux/arm64", "--out", out)
			if r.code != 0 {
				t.Fatalf("rebuild: exit %d\n%s", r.code, r.stderr)
			}
			if n := strings.Count(r.stderr, "msg=cached"); n != 3 {
				t.Errorf("rebuild reused %d of 3 binaries:\n%s", n, r.stderr)
			}

			// Another output directory gets byte-identical binaries.
			other := buildJSON(t, tc.pkg, "--target", "host,linux/arm64", "--out", t.TempDir())
			if len(other.Binaries) != len(m.Binaries) {
				t.Fatalf("the other directory has %d binaries, the first %d", len(other.Binaries), len(m.Binaries))
			}
			for i, b := range other.Binaries {
				if b.SHA256 != m.Binaries[i].SHA256 {
					t.Errorf("%s differs between output directories", b.File)
				}
			}
		})
	}
}

// TestBuildReproducible relinks from scratch in a second cache: the same
// source and flags must give the same bytes, not just the same cache entry.
// The second build also keeps the user's GOGC, where the first relaxes the
// tools' collector: that must change nothing in the output either.
func TestBuildReproducible(t *testing.T) {
	t.Parallel()
	a := buildJSON(t, "../../examples/wordcount", "--target", "linux/arm64", "--out", t.TempDir())
	r := beamctlEnv(t, []string{"GOGC=100"}, "build", "-v", "--output", "json", "../../examples/wordcount", "--target", "linux/arm64", "--out", t.TempDir(), "--cache-dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "GOGC=off") {
		t.Errorf("the user's GOGC was overridden:\n%s", r.stderr)
	}
	var b build.Manifest
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatal(err)
	}
	if len(a.Binaries) != 2 || len(b.Binaries) != len(a.Binaries) {
		t.Fatalf("builds of %d and %d binaries, want a launcher and a worker each", len(a.Binaries), len(b.Binaries))
	}
	for i := range a.Binaries {
		if a.Binaries[i].SHA256 != b.Binaries[i].SHA256 {
			t.Errorf("%s: relinking gave different bytes", a.Binaries[i].File)
		}
	}
}

// TestBuildDropsRemovedTargets checks that a rebuild for fewer targets does
// not leave the old worker beside a manifest that no longer names it.
func TestBuildDropsRemovedTargets(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	buildJSON(t, "../../examples/wordcount", "--target", "linux/amd64,linux/arm64", "--out", out)
	buildJSON(t, "../../examples/wordcount", "--target", "linux/amd64", "--out", out)
	if _, err := os.Stat(filepath.Join(out, "wordcount-worker-linux-arm64")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the arm64 worker is still in --out: %v", err)
	}
}

// sentinelDist is an earlier build output that a failed build must leave
// exactly as it was.
func sentinelDist(t *testing.T) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"manifest.json": `{"sentinel": true}`, "wordcount-worker-linux-amd64": "old worker"}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, func() {
		t.Helper()
		entries, _ := os.ReadDir(dir)
		if len(entries) != len(files) {
			t.Errorf("--out now holds %d entries, want the %d it had", len(entries), len(files))
		}
		for n, c := range files {
			got, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil || string(got) != c {
				t.Errorf("%s changed: %q, %v", n, got, err)
			}
		}
		// The new output is made beside --out: none of it may be left.
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".*")); len(left) > 0 {
			t.Errorf("left beside --out: %v", left)
		}
	}
}

func TestBuildBadInput(t *testing.T) {
	t.Parallel()
	noMod := t.TempDir()
	os.WriteFile(filepath.Join(noMod, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	// A pipeline's own manifest.json (data) does not make it a build output.
	ownManifest := t.TempDir()
	os.WriteFile(filepath.Join(ownManifest, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(ownManifest, "manifest.json"), []byte(`{"tables": []}`), 0o644)
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, []byte("x"), 0o644)
	cfgDir := t.TempDir()
	writeCfg := func(name, content string) string {
		p := filepath.Join(cfgDir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	unknownKey := writeCfg("unknown.yaml", "out: dist\ntrget: linux/arm64\n")
	badValue := writeCfg("badvalue.yaml", "# workers\njobs: many\n")
	badYAML := writeCfg("bad.yaml", "target: [linux/arm64\n")
	negativeJobs := writeCfg("negative.yaml", "# workers\njobs: -3\n")
	badTarget := writeCfg("target.yaml", "target: linux/amd46\n")

	const wc = "../../examples/wordcount"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bare OS", []string{"build", wc, "--target", "linux"}, 2, `target "linux" is not OS/ARCH[/VARIANT]: did you mean linux/amd64 or linux/arm64?`},
		{"unknown arch", []string{"build", wc, "--target", "linux/sparc"}, 2, `target "linux/sparc" is not a platform this Go toolchain can build: did you mean`},
		{"unknown variant", []string{"build", wc, "--target", "linux/arm64/v9"}, 2, `target "linux/arm64/v9" has an unknown variant v9`},
		{"removed port", []string{"build", wc, "--target", "windows/arm/v7"}, 2, `target "windows/arm/v7" is not a platform this Go toolchain can build`},
		{"32-bit arm", []string{"build", wc, "--target", "linux/arm/v7"}, 2, `target "linux/arm/v7" is 32-bit, and the Beam Go SDK builds for 64-bit Linux only: use linux/arm64`},
		{"32-bit x86 among others", []string{"build", wc, "--target", "linux/amd64,linux/386"}, 2, `target "linux/386" is 32-bit, and the Beam Go SDK builds for 64-bit Linux only: use linux/amd64`},
		{"wasm", []string{"build", wc, "--target", "wasip1/wasm"}, 2, `target "wasip1/wasm" is not a platform the Beam Go SDK builds for`},
		{"package not found", []string{"build", "./nope"}, 2, "package ./nope not found: no such directory"},
		{"import path not found", []string{"build", "github.com/beamctl/beamctl/nope"}, 2, "package github.com/beamctl/beamctl/nope not found (no required module provides package github.com/beamctl/beamctl/nope):"},
		{"no go.mod", []string{"build", noMod}, 2, "is not in a Go module: no go.mod"},
		{"a manifest.json of the pipeline's", []string{"build", ownManifest}, 2, "is not in a Go module: no go.mod"},
		{"a build output", []string{"run", builtDist(t)}, 2, "is a build output (it has manifest.json), not a pipeline's source"},
		{"upper-case target", []string{"build", wc, "--target", "LINUX/ARM64"}, 2, `target "LINUX/ARM64" is not in lower case: did you mean linux/arm64?`},
		{"not main", []string{"build", "./testdata/notmain"}, 2, "package ./testdata/notmain is package notmain, not package main"},
		{"not beam", []string{"build", "./testdata/notbeam"}, 2, "package ./testdata/notbeam does not use the Beam Go SDK"},
		{"compile error", []string{"build", "./testdata/broken"}, 1, `testdata/broken/main.go:13:18: cannot use "not a number"`},
		{"unwritable out", []string{"build", wc, "--out", "/proc/beamctl-out"}, 2, "--out /proc/beamctl-out is not writable"},
		{"out is a file", []string{"build", wc, "--out", aFile}, 2, "is a file, not a directory"},
		{"debug and strip", []string{"build", wc, "--debug", "--strip"}, 2, "--debug and --strip conflict"},
		{"debug and gcflags", []string{"build", wc, "--debug", "--gcflags", "-m"}, 2, "--debug and --gcflags conflict"},
		{"negative jobs", []string{"build", wc, "--jobs", "-1"}, 2, "--jobs -1 is negative"},
		{"bad output format", []string{"build", wc, "--output", "yaml"}, 2, `--output "yaml" is not a format: use text or json`},
		{"unknown flag", []string{"build", wc, "--tagets", "x"}, 2, "unknown flag: --tagets"},
		{"config unknown key", []string{"build", wc, "--config", unknownKey}, 2, unknownKey + `:2: unknown key "trget": did you mean "target"?`},
		{"config bad value", []string{"build", wc, "--config", badValue}, 2, badValue + `:2: key "jobs" must be a whole number, not "many"`},
		{"config bad yaml", []string{"build", wc, "--config", badYAML}, 2, badYAML + ":"},
		{"config missing", []string{"build", wc, "--config", filepath.Join(cfgDir, "none.yaml")}, 2, "none.yaml cannot be read"},
		{"config value refused", []string{"build", wc, "--config", negativeJobs}, 2, "--jobs -3 is negative: give a positive number of concurrent builds, or 0 for one per CPU (jobs is set by " + negativeJobs + ":2)"},
		{"config target refused", []string{"build", wc, "--config", badTarget}, 2, "did you mean linux/amd64, linux/arm64 or linux/mips64? (target is set by " + badTarget + ":1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dist, unchanged := sentinelDist(t)
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--out") {
				args = append(args, "--out", dist)
			}
			r := beamctl(t, args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("stderr has a stack trace:\n%s", r.stderr)
			}
			if tc.code == 2 && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("usage error spans lines:\n%s", r.stderr)
			}
			unchanged()
		})
	}
}

func TestBuildEnvironmentErrors(t *testing.T) {
	t.Parallel()
	t.Run("bad BEAMCTL_JOBS", func(t *testing.T) {
		r := beamctlEnv(t, []string{"BEAMCTL_JOBS=lots"}, "build", "../../examples/wordcount")
		if r.code != 2 || !strings.Contains(r.stderr, `BEAMCTL_JOBS="lots" is not a whole number`) {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
	})
	t.Run("no Go on PATH", func(t *testing.T) {
		dist, unchanged := sentinelDist(t)
		cmd := exec.Command(beamctlBinary(t), "build", "../../examples/wordcount", "--out", dist)
		cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "the Go toolchain was not found on PATH") {
			t.Errorf("%v:\n%s", err, stderr.String())
		}
		unchanged()
	})
}

// TestBuildConfigPrecedence checks flags > BEAMCTL_* > beamctl.yaml in
// the pipeline's directory.
func TestBuildConfigPrecedence(t *testing.T) {
	t.Parallel()
	pipeline := t.TempDir()
	src, _ := os.ReadFile("../../examples/wordcount/main.go")
	// The pipeline must stay in this module to build, so copy it into a
	// directory of the module that tests may write: testdata/ is ignored
	// by go vet ./... and friends. A fixed name keeps its compile in go's
	// build cache from one run of the tests to the next.
	dir := filepath.Join("testdata", "configprecedence")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644)
	cfgOut := filepath.Join(pipeline, "from-config")
	os.WriteFile(filepath.Join(dir, "beamctl.yaml"), []byte("target: linux/arm64\nout: "+cfgOut+"\n"), 0o644)

	m := buildJSON(t, "./"+dir)
	if w := m.Workers(); len(w) != 1 || w[0].Platform.Arch != "arm64" {
		t.Errorf("config target ignored: %+v", m.Workers())
	}
	if _, err := build.ReadManifest(cfgOut); err != nil {
		t.Errorf("config out ignored: %v", err)
	}
	r := beamctlEnv(t, []string{"BEAMCTL_TARGET=linux/amd64"}, "build", "./"+dir, "--output", "json")
	if r.code != 0 {
		t.Fatalf("build with BEAMCTL_TARGET: exit %d\n%s", r.code, r.stderr)
	}
	m = &build.Manifest{}
	if err := json.Unmarshal([]byte(r.stdout), m); err != nil {
		t.Fatalf("build output %q: %v", r.stdout, err)
	}
	if w := m.Workers(); len(w) != 1 || w[0].Platform.Arch != "amd64" {
		t.Errorf("BEAMCTL_TARGET did not override the config file: %+v", m.Workers())
	}
	flagOut := filepath.Join(pipeline, "from-flag")
	buildJSON(t, "./"+dir, "--out", flagOut)
	if _, err := build.ReadManifest(flagOut); err != nil {
		t.Errorf("--out did not override the config file: %v", err)
	}
}

// TestBuildInterrupted sends SIGINT mid-build: beamctl exits 130, leaves
// the earlier output as it was and leaves no go build running.
func TestBuildInterrupted(t *testing.T) {
	t.Parallel()
	dist, unchanged := sentinelDist(t)
	cache := t.TempDir()
	cmd := exec.Command(beamctlBinary(t), "build", "../../examples/wordcount", "--target", "linux/arm64", "--out", dist, "--cache-dir", cache, "--force")
	stderr := startStderr(t, cmd)
	// Interrupt once both go builds have started.
	buf := make([]byte, 4096)
	var seen bytes.Buffer
	for strings.Count(seen.String(), "msg=compiling") < 2 {
		n, err := stderr.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("beamctl ended before compiling: %v\n%s", err, seen.String())
		}
	}
	// and go runs the linker: on an interrupt of its own, go would leave
	// it running, and its work directory behind.
	linking := time.NewTicker(10 * time.Millisecond)
	defer linking.Stop()
	deadline := time.After(time.Minute)
	for !slices.ContainsFunc(processesMentioning(cache), func(c string) bool { return strings.Contains(c, "/link ") }) {
		select {
		case <-linking.C:
		case <-deadline:
			t.Fatalf("go never ran the linker\n%s", seen.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := readAll(stderr)
	seen.Write(rest)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130\n%s", err, seen.String())
	}
	unchanged()
	if procs := processesMentioning(cache); len(procs) > 0 {
		t.Errorf("processes still running after beamctl exited: %v", procs)
	}
	work, _ := filepath.Glob(filepath.Join(cache, "*", "tmp", "*"))
	more, _ := filepath.Glob(filepath.Join(cache, "tmp", "*"))
	if work = append(work, more...); len(work) > 0 {
		t.Errorf("work directories left in the cache: %v", work)
	}
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// processesMentioning lists the command lines that contain s.
func processesMentioning(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, []byte(s)) {
			out = append(out, strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	return out
}

// TestBuildRefusesBeforeCompiling: a target the Beam SDK cannot be built
// for is refused before anything is built or cached.
func TestBuildRefusesBeforeCompiling(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"linux/arm/v7", "linux/386"} {
		t.Run(strings.ReplaceAll(target, "/", "-"), func(t *testing.T) {
			t.Parallel()
			cache, out := t.TempDir(), filepath.Join(t.TempDir(), "dist")
			r := beamctl(t, "build", "../../examples/wordcount", "--target", target, "--cache-dir", cache, "--out", out)
			if r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("exit %d, want %d with one line:\n%s", r.code, exitUsage, r.stderr)
			}
			entries, err := os.ReadDir(cache)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) > 0 {
				t.Errorf("the cache holds %v after a refusal", entries)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("--out exists after a refusal: %v", err)
			}
		})
	}
}

package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	gobuild "go/build"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beamctl/beamctl"
)

func TestRewriteBootFile(t *testing.T) {
	const prefix = "example.com/p/_beamctl"
	for _, tt := range []struct {
		name       string
		src        string
		wantBuild  string   // the file's build constraint
		wantImport []string // its imports, sorted as gofmt sorts them
	}{
		{
			name: "no constraint",
			src: `// Package boot is the contract.
package boot

import (
	"fmt"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/internal/beam"
	d "github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctlx/other"
)

var _ = fmt.Sprint(pipepb.ArtifactInformation{}, beam.File{}, d.Short(""), other.X)
`,
			wantBuild: "//go:build go1.26",
			wantImport: []string{prefix + "/internal/beam", prefix + "/internal/digest",
				"fmt", "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1", "github.com/beamctl/beamctlx/other"},
		},
		{
			name: "constraint combined",
			src: `//go:build linux || android

package peercred

import "golang.org/x/sys/unix"

var _ = unix.Getpid
`,
			wantBuild:  "//go:build go1.26 && (linux || android)",
			wantImport: []string{"golang.org/x/sys/unix"},
		},
		{
			name: "constraint after a header",
			src: `// Copyright the authors.

//go:build !windows

package proc

import "github.com/beamctl/beamctl/internal/problem"

var _ = problem.Plain
`,
			wantBuild:  "//go:build go1.26 && !windows",
			wantImport: []string{prefix + "/internal/problem"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := rewriteBootFile("x.go", []byte(tt.src), prefix, "go1.26")
			if err != nil {
				t.Fatal(err)
			}
			if got := importsOf(t, out); !slices.Equal(got, tt.wantImport) {
				t.Errorf("imports %q, want %q", got, tt.wantImport)
			}
			assertBuildLines(t, out, "go1.26")
			if !strings.Contains(string(out), tt.wantBuild+"\n\n") {
				t.Errorf("output lacks %q:\n%s", tt.wantBuild, out)
			}
			// The go command must see the constraint: an older toolchain
			// skips the files rather than failing on newer language.
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x.go"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, release := range []int{25, 26} {
				ctx := gobuild.Default
				ctx.GOOS = "linux"
				ctx.ReleaseTags = nil
				for v := 1; v <= release; v++ {
					ctx.ReleaseTags = append(ctx.ReleaseTags, fmt.Sprintf("go1.%d", v))
				}
				if match, err := ctx.MatchFile(dir, "x.go"); err != nil || match != (release == 26) {
					t.Errorf("go1.%d builds the file: %v, %v; want %v", release, match, err, release == 26)
				}
			}
			if formatted, err := format.Source(out); err != nil || !bytes.Equal(formatted, out) {
				t.Errorf("output is not gofmt-formatted (%v):\n%s", err, out)
			}
		})
	}
}

// TestRewriteBootSource rewrites the embedded source itself: every file
// must come out formatted, constrained, and free of beamctl's own import
// paths, or the boot would be built from beamctl's module instead of the
// pipeline's.
func TestRewriteBootSource(t *testing.T) {
	const prefix = "example.com/p/_beamctl"
	files, err := bootFiles()
	if err != nil {
		t.Fatal(err)
	}
	goVersion, err := bootGoVersion()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files in beamctl-boot's embedded source", len(files))
	}
	for _, f := range files {
		out, err := rewriteBootFile(f.name, f.data, prefix, goVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range importsOf(t, out) {
			if strings.HasPrefix(imp, beamctl.Module+"/") {
				t.Errorf("%s still imports %s", f.name, imp)
			}
		}
		assertBuildLines(t, out, goVersion)
		if formatted, err := format.Source(out); err != nil || !bytes.Equal(formatted, out) {
			t.Errorf("%s is not gofmt-formatted after rewriting (%v)", f.name, err)
		}
	}
}

func importsOf(t *testing.T, src []byte) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, parser.ImportsOnly)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	var out []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// assertBuildLines checks that src has exactly one //go:build line, which
// requires goVersion, and no legacy +build lines that could disagree.
func assertBuildLines(t *testing.T, src []byte, goVersion string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "//go:build ") {
			lines = append(lines, l)
		}
		if strings.HasPrefix(l, "// +build") {
			t.Errorf("legacy build line %q", l)
		}
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "//go:build "+goVersion) {
		t.Errorf("build lines %q, want one requiring %s", lines, goVersion)
	}
}

// TestBuildBoot builds beamctl-boot inside a pipeline of another module,
// as beamctl build --boot does.
func TestBuildBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles a pipeline")
	}
	modDir, err := filepath.Abs("../examples/linestats")
	if err != nil {
		t.Fatal(err)
	}
	amd64, arm64 := Platform{OS: "linux", Arch: "amd64"}, Platform{OS: "linux", Arch: "arm64"}
	base := t.TempDir()
	var events []Event
	o := Options{
		WorkDir:  modDir,
		Targets:  []Platform{amd64, arm64},
		OutDir:   filepath.Join(base, "dist"),
		CacheDir: filepath.Join(base, "cache"),
		Boot:     true,
		OnEvent:  func(e Event) { events = append(events, e) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first build: %v", time.Since(start))

	for _, p := range []Platform{amd64, arm64} {
		b, ok := m.Boot(p)
		if !ok {
			t.Fatalf("the manifest has no boot for %s: %+v", p, m.Binaries)
		}
		if b.Role != RoleBoot || b.File != "beamctl-boot-linux-"+p.Arch {
			t.Errorf("boot for %s is %+v", p, b)
		}
		path := filepath.Join(o.OutDir, b.File)
		if data, err := os.ReadFile(path); err != nil {
			t.Fatal(err)
		} else if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != b.SHA256 || int64(len(data)) != b.Size {
			t.Errorf("%s does not match its manifest entry", b.File)
		}
		info, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", b.File, err)
		}
		// Built in the pipeline's module, so against its versions of gRPC
		// and Beam's protos, not beamctl's.
		if info.Main.Path != "example.com/linestats" || info.Path != "example.com/linestats/_beamctl/"+beamctl.BootMain {
			t.Errorf("%s was built as %s in module %s", b.File, info.Path, info.Main.Path)
		}
		for _, kv := range info.Settings {
			if kv.Key == "GOARCH" && kv.Value != p.Arch {
				t.Errorf("%s is built for %s", b.File, kv.Value)
			}
		}
	}
	if got, err := ReadManifest(o.OutDir); err != nil {
		t.Errorf("ReadManifest: %v", err)
	} else if !slices.Equal(got.Binaries, m.Binaries) {
		t.Errorf("manifest.json lists %+v, want %+v", got.Binaries, m.Binaries)
	}

	b, _ := m.Boot(amd64)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(o.OutDir, b.File), "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("beamctl-boot --help: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	// Flag lines, not the prose that mentions them.
	for _, flag := range []string{"id", "provision_endpoint", "worker_pool", "worker-sha256"} {
		if !strings.Contains(stdout.String(), "\n  -"+flag+" ") && !strings.Contains(stdout.String(), "\n  -"+flag+"\n") {
			t.Errorf("beamctl-boot --help does not list %s:\n%s", flag, stdout.String())
		}
	}

	// The source exists only in the overlay: the user's tree stays as it
	// was, and their own go build ./... never sees it.
	filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == bootRoot {
			t.Errorf("%s was left in the pipeline's module", p)
		}
		return err
	})

	// A fresh cache links everything; the same build again links nothing.
	for i, want := range []State{Done, Cached} {
		if i > 0 {
			events = nil
			start = time.Now()
			if _, err := Build(ctx, o); err != nil {
				t.Fatal(err)
			}
			t.Logf("second build: %v", time.Since(start))
		}
		final := map[string]State{}
		for _, e := range events {
			if e.State == Cached || e.State == Done {
				final[e.File] = e.State
			}
		}
		// A launcher, a worker and a boot for each of the two targets.
		if len(m.Binaries) != 5 {
			t.Fatalf("build %d: %d binaries, want 5: %+v", i+1, len(m.Binaries), m.Binaries)
		}
		for _, b := range m.Binaries {
			if final[b.File] != want {
				t.Errorf("build %d: %s was %q, want %q", i+1, b.File, final[b.File], want)
			}
		}
	}
}

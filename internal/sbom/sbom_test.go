package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"
)

var update = flag.Bool("update", false, "rewrite testdata/handmade.spdx.json from the output")

var created = time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))

// buildWithDeps builds testdata/withdeps, a binary whose build info lists
// dependency modules, which the test binary's does not.
func buildWithDeps(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "withdeps")
	if b, err := exec.Command("go", "build", "-o", out, "./testdata/withdeps").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestFromFile(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		path     string
		wantDeps bool
	}{
		{"test binary", self, false},
		{"binary with dependencies", buildWithDeps(t), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Created: created, Name: "worker"}
			out, err := FromFile(t.Context(), tt.path, o)
			if err != nil {
				t.Fatal(err)
			}
			doc := decode(t, out)
			if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != documentID {
				t.Errorf("header = %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
			}
			if want := "2026-01-02T02:04:05Z"; doc.CreationInfo.Created != want {
				t.Errorf("created = %q, want %q", doc.CreationInfo.Created, want)
			}
			checkIDs(t, doc)

			bi, err := buildinfo.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantDeps && len(bi.Deps) == 0 {
				t.Fatal("the binary lists no dependencies: the check below would pass vacuously")
			}
			for _, d := range bi.Deps {
				// A replace directive in go.mod would put the replacement in
				// the binary.
				if d.Replace != nil {
					d = d.Replace
				}
				p := find(t, doc, d.Path, d.Version)
				if want := "pkg:golang/" + d.Path + "@" + d.Version; purlOf(p) != want {
					t.Errorf("%s purl = %q, want %q", d.Path, purlOf(p), want)
				}
				if !strings.Contains(p.PackageComment, d.Sum) {
					t.Errorf("%s comment %q lacks its sum %s", d.Path, p.PackageComment, d.Sum)
				}
			}
			mainPkg := find(t, doc, bi.Main.Path, bi.Main.Version)
			if want := []spdx.Checksum{{Algorithm: common.SHA256, Value: fileSHA256(t, tt.path)}}; !slices.Equal(mainPkg.PackageChecksums, want) {
				t.Errorf("main checksums = %v, want %v", mainPkg.PackageChecksums, want)
			}
			if want := "https://beamctl.dev/spdx/worker-" + fileSHA256(t, tt.path); doc.DocumentNamespace != want {
				t.Errorf("namespace = %q, want %q", doc.DocumentNamespace, want)
			}
			find(t, doc, "go", bi.GoVersion)

			// The same content elsewhere must give the same bytes: the
			// path is not part of what is described.
			again, err := FromFile(t.Context(), copyFile(t, tt.path), o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Error("a second document of the same binary differs")
			}
		})
	}
}

func TestFromFileErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a binary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, why string
		// borrowed is a file of the system's, which some have not.
		borrowed bool
	}{
		{"text file", text, "unrecognized file format", false},
		{"missing file", filepath.Join(dir, "absent"), "no such file or directory", false},
		{"non-Go executable", "/bin/true", "not a Go executable", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); tt.borrowed && err != nil {
				t.Skip(err)
			}
			_, err := FromFile(t.Context(), tt.path, Options{Created: created})
			if err == nil {
				t.Fatal("no error")
			}
			if want := "reading build info of " + tt.path + ": " + tt.why; err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
	if _, err := FromFile(t.Context(), filepath.Join(dir, "absent"), Options{Created: created}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error for a missing file = %v, not fs.ErrNotExist", err)
	}
}

func handMade() *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8 X:nodwarf5",
		Path:      "example.com/worker/cmd/worker",
		Main:      debug.Module{Path: "example.com/worker", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "example.com/a/b", Version: "v1.0.0", Sum: "h1:ab="},
			{Path: "example.com/a-b", Version: "v1.0.0", Sum: "h1:a-b="},
			{Path: "example.com/old", Version: "v0.9.0", Replace: &debug.Module{Path: "example.com/new", Version: "v1.1.0", Sum: "h1:new="}},
			{Path: "example.com/forked", Version: "v2.0.0+incompatible", Replace: &debug.Module{Path: "../forked"}},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abc"},
			{Key: "GOOS", Value: "linux"},
			{Key: "-ldflags", Value: "-s -w"},
			{Key: "GOARCH", Value: "arm64"},
		},
	}
}

const binSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestFromBuildInfo(t *testing.T) {
	out, err := FromBuildInfo(handMade(), strings.ToUpper(binSum), Options{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "handmade.spdx.json")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("output differs from %s (rerun with -update to see how):\n%s", golden, out)
	}
	// The golden file is what the code wrote: it must hold as SPDX on its
	// own, read by SPDX's library, not only match the code.
	decode(t, want)
	doc := decode(t, out)
	checkIDs(t, doc)
	for path, id := range map[string]string{
		// a-b sorts before a/b, so the collision numbers a/b.
		"example.com/a-b": "SPDXRef-Package-example.com-a-b-v1.0.0",
		"example.com/a/b": "SPDXRef-Package-example.com-a-b-v1.0.0-2",
	} {
		if p := find(t, doc, path, "v1.0.0"); common.RenderElementID(p.PackageSPDXIdentifier) != id {
			t.Errorf("%s has id %s, want %s", path, common.RenderElementID(p.PackageSPDXIdentifier), id)
		}
	}
	if p := find(t, doc, "example.com/new", "v1.1.0"); !strings.Contains(p.PackageComment, "replaces example.com/old@v0.9.0") {
		t.Errorf("replacement comment = %q", p.PackageComment)
	}
	if p := find(t, doc, "../forked", ""); p.PackageExternalReferences != nil {
		t.Errorf("a directory replacement has a purl: %v", p.PackageExternalReferences)
	}

	// Input order must not matter: the go command sorts Deps, a hand-made
	// or future BuildInfo may not.
	bi := handMade()
	slices.Reverse(bi.Deps)
	slices.Reverse(bi.Settings)
	if again, err := FromBuildInfo(bi, binSum, Options{Created: created}); err != nil || !bytes.Equal(again, out) {
		t.Errorf("reordered build info gives other output (err %v)", err)
	}
}

func TestFromBuildInfoErrors(t *testing.T) {
	noModule := handMade()
	noModule.Main = debug.Module{}
	for _, tt := range []struct {
		name    string
		bi      *debug.BuildInfo
		sum     string
		created time.Time
		want    string
	}{
		{"nil build info", nil, binSum, created, "no module information"},
		{"no main module", noModule, binSum, created, "no module information"},
		{"short digest", handMade(), binSum[:10], created, "not 64 hex digits"},
		{"no creation time", handMade(), binSum, time.Time{}, "no document creation time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromBuildInfo(tt.bi, tt.sum, Options{Created: tt.created})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// decode reads out with SPDX's own library and validates it there, and
// checks that writing what was read gives out again: nothing in out is
// outside what the library models.
func decode(t *testing.T, out []byte) *spdx.Document {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("}\n")) || !bytes.HasPrefix(out, []byte("{\n  \"spdxVersion\"")) {
		t.Errorf("output is not two-space indented JSON ending in a newline:\n%.200s", out)
	}
	doc, err := spdxjson.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("SPDX's reader refuses the document: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("SPDX's validation refuses the document: %v", err)
	}
	var again bytes.Buffer
	if err := spdxjson.Write(doc, &again, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), out) {
		t.Errorf("the document read and written again differs:\n%s", again.Bytes())
	}
	if ids, err := spdxlib.GetDescribedPackageIDs(doc); err != nil || len(ids) != 1 {
		t.Errorf("the document describes %v (%v), want its main package alone", ids, err)
	}
	return doc
}

var idRE = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

// checkIDs checks that ids are valid and unique, and that relationships
// join the document to one package and that one to every other.
func checkIDs(t *testing.T, doc *spdx.Document) {
	t.Helper()
	ids := map[spdx.ElementID]bool{doc.SPDXIdentifier: true}
	for _, p := range doc.Packages {
		if !idRE.MatchString(common.RenderElementID(p.PackageSPDXIdentifier)) {
			t.Errorf("invalid id %q", p.PackageSPDXIdentifier)
		}
		if ids[p.PackageSPDXIdentifier] {
			t.Errorf("duplicate id %q", p.PackageSPDXIdentifier)
		}
		ids[p.PackageSPDXIdentifier] = true
	}
	if len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("%d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
	}
	r := doc.Relationships[0]
	if r.RefA.ElementRefID != documentID || r.Relationship != common.TypeRelationshipDescribe {
		t.Errorf("first relationship = %v, want the document describing the main package", r)
	}
	for _, d := range doc.Relationships[1:] {
		if d.RefA != r.RefB || d.Relationship != common.TypeRelationshipDependsOn {
			t.Errorf("relationship %v is not the main package depending on another", d)
		}
	}
}

func find(t *testing.T, doc *spdx.Document, name, version string) *spdx.Package {
	t.Helper()
	for _, p := range doc.Packages {
		if p.PackageName == name && p.PackageVersion == version {
			return p
		}
	}
	t.Fatalf("no package %s %s", name, version)
	return nil
}

func purlOf(p *spdx.Package) string {
	for _, r := range p.PackageExternalReferences {
		if r.RefType == common.TypePackageManagerPURL {
			return r.Locator
		}
	}
	return ""
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

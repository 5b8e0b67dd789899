package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
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
			out, err := FromFile(tt.path, o)
			if err != nil {
				t.Fatal(err)
			}
			doc := decode(t, out)
			if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != documentID {
				t.Errorf("header = %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXID)
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
				if !strings.Contains(p.Comment, d.Sum) {
					t.Errorf("%s comment %q lacks its sum %s", d.Path, p.Comment, d.Sum)
				}
			}
			mainPkg := find(t, doc, bi.Main.Path, bi.Main.Version)
			if want := []checksum{{"SHA256", fileSHA256(t, tt.path)}}; !slices.Equal(mainPkg.Checksums, want) {
				t.Errorf("main checksums = %v, want %v", mainPkg.Checksums, want)
			}
			if want := "https://beamctl.dev/spdx/worker-" + fileSHA256(t, tt.path); doc.DocumentNamespace != want {
				t.Errorf("namespace = %q, want %q", doc.DocumentNamespace, want)
			}
			find(t, doc, "go", bi.GoVersion)

			// The same content elsewhere must give the same bytes: the
			// path is not part of what is described.
			again, err := FromFile(copyFile(t, tt.path), o)
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
			_, err := FromFile(tt.path, Options{Created: created})
			if err == nil {
				t.Fatal("no error")
			}
			if want := "reading build info of " + tt.path + ": " + tt.why; err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
	if _, err := FromFile(filepath.Join(dir, "absent"), Options{Created: created}); !errors.Is(err, fs.ErrNotExist) {
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
	doc := decode(t, out)
	checkIDs(t, doc)
	for path, id := range map[string]string{
		// a-b sorts before a/b, so the collision numbers a/b.
		"example.com/a-b": "SPDXRef-Package-example.com-a-b-v1.0.0",
		"example.com/a/b": "SPDXRef-Package-example.com-a-b-v1.0.0-2",
	} {
		if p := find(t, doc, path, "v1.0.0"); p.SPDXID != id {
			t.Errorf("%s has id %s, want %s", path, p.SPDXID, id)
		}
	}
	if p := find(t, doc, "example.com/new", "v1.1.0"); !strings.Contains(p.Comment, "replaces example.com/old@v0.9.0") {
		t.Errorf("replacement comment = %q", p.Comment)
	}
	if p := find(t, doc, "../forked", ""); p.ExternalRefs != nil {
		t.Errorf("a directory replacement has a purl: %v", p.ExternalRefs)
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

func decode(t *testing.T, out []byte) document {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("}\n")) || !bytes.HasPrefix(out, []byte("{\n  \"spdxVersion\"")) {
		t.Errorf("output is not two-space indented JSON ending in a newline:\n%.200s", out)
	}
	var doc document
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

var idRE = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

// checkIDs checks that ids are valid and unique, and that relationships
// join the document to one package and that one to every other.
func checkIDs(t *testing.T, doc document) {
	t.Helper()
	ids := map[string]bool{doc.SPDXID: true}
	for _, p := range doc.Packages {
		if !idRE.MatchString(p.SPDXID) {
			t.Errorf("invalid id %q", p.SPDXID)
		}
		if ids[p.SPDXID] {
			t.Errorf("duplicate id %q", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	if len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("%d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
	}
	for _, r := range doc.Relationships {
		if !ids[r.SPDXElementID] || !ids[r.RelatedSPDXElement] {
			t.Errorf("relationship %v names an unknown id", r)
		}
	}
	if r := doc.Relationships[0]; r.SPDXElementID != documentID || r.RelationshipType != "DESCRIBES" {
		t.Errorf("first relationship = %v, want the document describing the main package", r)
	}
}

func find(t *testing.T, doc document, name, version string) pkg {
	t.Helper()
	for _, p := range doc.Packages {
		if p.Name == name && p.VersionInfo == version {
			return p
		}
	}
	t.Fatalf("no package %s %s", name, version)
	return pkg{}
}

func purlOf(p pkg) string {
	for _, r := range p.ExternalRefs {
		if r.ReferenceType == "purl" {
			return r.ReferenceLocator
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

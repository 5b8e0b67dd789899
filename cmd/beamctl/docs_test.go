package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra/doc"
)

// handWritten are the reference's pages that are not generated.
var handWritten = map[string]bool{"json.md": true}

// TestCommandReference keeps docs/reference in step with the commands.
// BEAMCTL_UPDATE_DOCS=1 go test -run TestCommandReference ./cmd/beamctl
// rewrites it.
func TestCommandReference(t *testing.T) {
	t.Parallel()
	want := filepath.Join("..", "..", "docs", "reference")
	got := t.TempDir()
	root := newRootCmd(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, got); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("BEAMCTL_UPDATE_DOCS") == "1" {
		old, _ := os.ReadDir(want)
		for _, e := range old {
			if !handWritten[e.Name()] {
				os.Remove(filepath.Join(want, e.Name()))
			}
		}
		if err := os.CopyFS(want, os.DirFS(got)); err != nil {
			t.Fatal(err)
		}
		return
	}
	entries, err := os.ReadDir(got)
	if err != nil {
		t.Fatal(err)
	}
	existing, _ := os.ReadDir(want)
	if len(existing) != len(entries)+len(handWritten) {
		t.Errorf("docs/reference has %d files, the commands make %d: run BEAMCTL_UPDATE_DOCS=1 go test -run TestCommandReference ./cmd/beamctl", len(existing), len(entries))
	}
	for _, e := range entries {
		g, _ := os.ReadFile(filepath.Join(got, e.Name()))
		w, err := os.ReadFile(filepath.Join(want, e.Name()))
		if err != nil || !bytes.Equal(g, w) {
			t.Errorf("docs/reference/%s is out of date: run BEAMCTL_UPDATE_DOCS=1 go test -run TestCommandReference ./cmd/beamctl", e.Name())
		}
	}
}

// TestGuideListsSettings keeps the guide's list of configuration keys
// the same as beamctl's: every key beamctl.yaml takes is named there, and
// every key named there is one (a setting whose declaration was lost
// would otherwise go unnoticed).
func TestGuideListsSettings(t *testing.T) {
	t.Parallel()
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(guide), "## Configuration")
	section, _, _ = strings.Cut(section, "\n## ")
	_, list, ok := strings.Cut(section, "Keys are the flag names:")
	list, _, _ = strings.Cut(list, ". ")
	if !ok {
		t.Fatal("the guide's Configuration section lists no keys (Keys are the flag names: ...)")
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z-]+)`").FindAllStringSubmatch(list, -1) {
		named[m[1]] = true
	}
	keys := allSettings()
	for key := range keys {
		if !named[key] {
			t.Errorf("the guide's Configuration section does not name the key %s", key)
		}
	}
	for key := range named {
		if _, ok := keys[key]; !ok {
			t.Errorf("the guide's Configuration section names %s, which is no setting", key)
		}
	}
}

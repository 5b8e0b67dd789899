package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		io.WriteString(w, "half of the new")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want the fill's", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("a failed write left %q, want the old content", got)
	}
	if err := Write(p, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "new" {
		t.Errorf("content = %q, want new", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want only the file: temporary files left", len(ents))
	}
}

// TestWriteAs names the file after its content is written, as a cache
// named by digest does, and refuses a name that leaves the directory.
func TestWriteAs(t *testing.T) {
	dir := t.TempDir()
	p, err := WriteAs(dir, 0o644, func(w io.Writer) (string, error) {
		_, err := io.WriteString(w, "blob")
		return "named-after-writing", err
	})
	if err != nil || p != filepath.Join(dir, "named-after-writing") {
		t.Fatalf("WriteAs = %q, %v", p, err)
	}
	if got, _ := os.ReadFile(p); string(got) != "blob" {
		t.Errorf("content = %q", got)
	}
	for _, bad := range []string{"", "../escape", "sub/file"} {
		if _, err := WriteAs(dir, 0o644, func(io.Writer) (string, error) { return bad, nil }); err == nil {
			t.Errorf("name %q was accepted", bad)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want only the file: temporary files left", len(ents))
	}
}

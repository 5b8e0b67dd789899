package build

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadModule(t *testing.T) {
	for _, tc := range []struct {
		name        string
		gomod       string
		wantVersion string
		wantReplace string
		wantErr     bool
	}{
		{name: "plain", gomod: "module example.com/p\n\ngo 1.26\n\nrequire github.com/apache/beam/sdks/v2 v2.77.0\n", wantVersion: "v2.77.0"},
		{name: "replaced by version", gomod: "module example.com/p\n\ngo 1.26\n\nrequire github.com/apache/beam/sdks/v2 v2.77.0\n\nreplace github.com/apache/beam/sdks/v2 => github.com/apache/beam/sdks/v2 v2.76.0\n",
			wantVersion: "v2.76.0", wantReplace: "github.com/apache/beam/sdks/v2@v2.76.0"},
		{name: "replaced by directory", gomod: "module example.com/p\n\ngo 1.26\n\nrequire github.com/apache/beam/sdks/v2 v2.77.0\n\nreplace github.com/apache/beam/sdks/v2 => ../beam/sdks\n",
			wantVersion: "", wantReplace: "../beam/sdks"},
		{name: "versioned replace of another version", gomod: "module example.com/p\n\ngo 1.26\n\nrequire github.com/apache/beam/sdks/v2 v2.77.0\n\nreplace github.com/apache/beam/sdks/v2 v2.70.0 => ../old\n",
			wantVersion: "v2.77.0"},
		{name: "no beam", gomod: "module example.com/p\n\ngo 1.26\n", wantVersion: ""},
		{name: "malformed", gomod: "module example.com/p\nrequire (\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "go.mod")
			if err := os.WriteFile(p, []byte(tc.gomod), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := ReadModule(p)
			if tc.wantErr {
				if err == nil {
					t.Fatal("ReadModule accepted a malformed go.mod")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Path != "example.com/p" || m.GoDirective != "1.26" {
				t.Errorf("module = %q go %q, want example.com/p go 1.26", m.Path, m.GoDirective)
			}
			if m.BeamVersion != tc.wantVersion || m.BeamReplace != tc.wantReplace {
				t.Errorf("beam = %q replace %q; want %q replace %q", m.BeamVersion, m.BeamReplace, tc.wantVersion, tc.wantReplace)
			}
		})
	}
}

func TestProgramName(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"example.com/pipelines/wordcount", "wordcount"},
		{"example.com/pipelines/wordcount/v2", "wordcount"},
		{"example.com/v2", "example.com"},
		{"wordcount", "wordcount"},
	} {
		if got := programName(tc.path, "/x/dir"); got != tc.want {
			t.Errorf("programName(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestRelativize(t *testing.T) {
	out := "./main.go:12:2: undefined: x\nnote: something\n/abs/y.go:3: z"
	got := relativize(out, "/w/examples/p", "/w")
	want := "examples/p/main.go:12:2: undefined: x\nnote: something\n/abs/y.go:3: z"
	if got != want {
		t.Fatalf("relativize =\n%s\nwant\n%s", got, want)
	}
}

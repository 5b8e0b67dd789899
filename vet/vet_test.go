package vet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/vet"
)

// want is a finding a test pipeline expects: "// want ANALYZER "RE"..."
// on the line it is expected at; each RE must match the message or fix.
type want struct {
	pos      string
	analyzer string
	res      []*regexp.Regexp
}

var wantRE = regexp.MustCompile(`// want (\w+)((?: "(?:[^"\\]|\\.)*")+)`)
var quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

func wants(t *testing.T, dir string) []want {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []want
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			m := wantRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			w := want{pos: fmt.Sprintf("%s:%d", f, i+1), analyzer: m[1]}
			for _, q := range quotedRE.FindAllStringSubmatch(m[2], -1) {
				w.res = append(w.res, regexp.MustCompile(strings.ReplaceAll(q[1], `\"`, `"`)))
			}
			out = append(out, w)
		}
	}
	return out
}

func check(t *testing.T, dir string) *vet.Report {
	t.Helper()
	o := build.Options{CacheDir: t.TempDir()}
	vo := o.VetOptions("./" + dir)
	rep, err := vet.Run(context.Background(), vo)
	if err != nil {
		t.Fatalf("vet %s: %v", dir, err)
	}
	return rep
}

// TestFindings checks each analyzer's pipeline with the mistake (a finding
// on each line that wants one, and no other) and the corrected pipeline
// (none).
func TestFindings(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("testdata/*/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		kind := filepath.Base(filepath.Dir(dir))
		if kind != "bad" && kind != "good" {
			continue
		}
		t.Run(kind+"/"+filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			ws := wants(t, dir)
			if kind == "bad" && len(ws) == 0 {
				t.Fatalf("%s wants no finding", dir)
			}
			rep := check(t, dir)
			var got []string
			for _, f := range rep.Findings {
				got = append(got, f.String())
			}
			matched := make([]bool, len(rep.Findings))
			for _, w := range ws {
				i := slices.IndexFunc(rep.Findings, func(f vet.Finding) bool {
					return strings.HasPrefix(f.Position, w.pos+":") && f.Analyzer == w.analyzer
				})
				if i < 0 {
					t.Errorf("%s: no %s finding; got:\n%s", w.pos, w.analyzer, strings.Join(got, "\n"))
					continue
				}
				matched[i] = true
				for _, re := range w.res {
					if f := rep.Findings[i]; !re.MatchString(f.Message) && !re.MatchString(f.Fix) {
						t.Errorf("%s: %q matches neither %q nor %q", w.pos, re, f.Message, f.Fix)
					}
				}
			}
			for i, f := range rep.Findings {
				if !matched[i] {
					t.Errorf("unexpected finding %s", f)
				}
				if f.Fix == "" {
					t.Errorf("finding without a fix: %s", f)
				}
			}
		})
	}
}

// TestBeamExamples checks Beam's own Go examples, which run correctly,
// from a module of their own: no finding.
func TestBeamExamples(t *testing.T) {
	t.Parallel()
	examples := []string{"wordcount", "large_wordcount", "multiout", "pingpong", "stringsplit", "ordered_list_state",
		"minimal_wordcount", "debugging_wordcount", "windowed_wordcount", "grades", "yatzy", "contains", "forest"}
	var patterns []string
	for _, e := range examples {
		patterns = append(patterns, "github.com/apache/beam/sdks/v2/go/examples/"+e)
	}
	wd, err := filepath.Abs("../testdata/beamexamples")
	if err != nil {
		t.Fatal(err)
	}
	o := build.Options{CacheDir: t.TempDir(), WorkDir: wd}
	rep, err := vet.Run(context.Background(), o.VetOptions(patterns...))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Packages) != len(examples) {
		t.Errorf("checked %d packages, want %d: %v", len(rep.Packages), len(examples), rep.Packages)
	}
	for _, f := range rep.Findings {
		t.Errorf("false finding in Beam's examples: %s", f)
	}
}

// TestCache keeps the findings of unchanged files and checks again after
// an edit or a new file.
func TestCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/bad/unregistered/main.go")
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "pipeline")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join("../testdata/beamexamples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(pkg, "main.go")
	if err := os.WriteFile(main, src, 0o644); err != nil {
		t.Fatal(err)
	}
	o := build.Options{CacheDir: t.TempDir(), WorkDir: dir}
	run := func() *vet.Report {
		t.Helper()
		rep, err := vet.Run(context.Background(), o.VetOptions("./pipeline"))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	first := run()
	if first.Cached || len(first.Findings) != 4 {
		t.Fatalf("first check: cached %v, %d findings, want a fresh check with 4", first.Cached, len(first.Findings))
	}
	if again := run(); !again.Cached || !slices.Equal(again.Findings, first.Findings) {
		t.Fatalf("unchanged check: cached %v, findings %v; want the first check's, kept", again.Cached, again.Findings)
	}
	fixed := strings.Replace(string(src), "func shout(", "func init() { register.Function1x1(shout) }\n\nfunc shout(", 1)
	if err := os.WriteFile(main, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if edited := run(); edited.Cached || len(edited.Findings) != 3 {
		t.Fatalf("after registering shout: cached %v, findings %v; want a fresh check with 3", edited.Cached, edited.Findings)
	}
	extra := filepath.Join(pkg, "more.go")
	if err := os.WriteFile(extra, []byte("package main\n\nfunc init() { beam.RegisterType(nil) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vet.Run(context.Background(), o.VetOptions("./pipeline")); err == nil {
		t.Fatal("a new file that does not compile went unnoticed: the check was kept")
	}
}

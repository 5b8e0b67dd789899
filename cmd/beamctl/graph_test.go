package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/graph"
	"github.com/beamctl/beamctl/internal/svgtest"
	"github.com/beamctl/beamctl/internal/testenv"
)

// beamExample is one of Beam's own Go examples, with arguments its
// launcher accepts.
type beamExample struct {
	name string
	args func(dir string) []string
}

func (e beamExample) pkg() string { return "github.com/apache/beam/sdks/v2/go/examples/" + e.name }

var beamExamples = []beamExample{
	{"wordcount", func(dir string) []string {
		return []string{"--input=" + filepath.Join(dir, "in.txt"), "--output=" + filepath.Join(dir, "counts.txt")}
	}},
	{"multiout", func(dir string) []string {
		return []string{"--input=" + filepath.Join(dir, "in.txt"), "--small=" + filepath.Join(dir, "small.txt"), "--big=" + filepath.Join(dir, "big.txt")}
	}},
	{"large_wordcount", func(dir string) []string {
		return []string{"--input=" + filepath.Join(dir, "in.txt"), "--output=" + filepath.Join(dir, "counts.txt")}
	}},
}

// beamExamplesModule is the module the tests build Beam's examples from,
// as a user's module would.
func beamExamplesModule(t *testing.T) string { return abs(t, "../../testdata/beamexamples") }

// graphOf is beamctl graph --format json of a Beam example, captured once
// per test binary: the run of Beam's wordcount builds the same binaries
// (for the host, in beamctl's cache), so a warm graph links nothing.
type graphOf struct {
	once sync.Once
	file string
	args []string
	err  string
}

var exampleGraphs sync.Map // name → *graphOf

func exampleGraph(t *testing.T, e beamExample) (file string, args []string) {
	t.Helper()
	v, _ := exampleGraphs.LoadOrStore(e.name, &graphOf{})
	gf := v.(*graphOf)
	gf.once.Do(func() {
		dir := filepath.Join(cacheDir, "graph-"+e.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			gf.err = err.Error()
			return
		}
		gf.file, gf.args = filepath.Join(dir, "graph.json"), e.args(dir)
		r := beamctlProcessIn(t, beamExamplesModule(t), 10*time.Minute,
			append([]string{"graph", e.pkg(), "--target", "host", "--format", "json", "--out", gf.file, "--"}, gf.args...)...)
		if r.code != 0 || r.stdout != "" {
			gf.err = "graph: exit " + strconv.Itoa(r.code) + ", stdout " + r.stdout + "\n" + r.stderr
		}
	})
	if gf.err != "" {
		t.Fatal(gf.err)
	}
	return gf.file, gf.args
}

func readGraph(t *testing.T, file string) *graph.Graph {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := graph.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// capturedLeaves captures the example's pipeline with the capture package
// from the launcher graph built, and lists its leaf transforms: what the
// capture service received, independently of package graph.
func capturedLeaves(t *testing.T, e beamExample, args []string) []string {
	t.Helper()
	out, err := build.Options{CacheDir: cacheDir, WorkDir: beamExamplesModule(t), Package: e.pkg()}.CacheOut()
	if err != nil {
		t.Fatal(err)
	}
	m, err := build.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := m.Launcher(build.HostPlatform())
	if !ok {
		t.Fatalf("%s has no launcher", out)
	}
	launcher := filepath.Join(out, l.File)
	c, err := capture.Capture(context.Background(), capture.Options{Launcher: launcher, WorkerPath: launcher, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	var leaves []string
	for _, tr := range c.Pipeline.GetComponents().GetTransforms() {
		if len(tr.GetSubtransforms()) == 0 {
			leaves = append(leaves, tr.GetUniqueName())
		}
	}
	sort.Strings(leaves)
	return leaves
}

func leafNames(g *graph.Graph) []string {
	var names []string
	for _, t := range g.Leaves() {
		names = append(names, t.UniqueName)
	}
	sort.Strings(names)
	return names
}

// TestGraphBeamExamples captures Beam's own examples with beamctl graph:
// the JSON lists every leaf transform the capture service received;
// Graphviz's dot accepts the DOT at every depth; the Mermaid holds the
// nodes and edges the JSON says; the text shows every transform.
func TestGraphBeamExamples(t *testing.T) {
	t.Parallel()
	for _, e := range beamExamples {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			file, args := exampleGraph(t, e)
			g := readGraph(t, file)
			if want := capturedLeaves(t, e, args); !slices.Equal(leafNames(g), want) {
				t.Errorf("the graph's leaves\n%v\ndiffer from the captured pipeline's\n%v", leafNames(g), want)
			}
			for _, pc := range g.PCollections {
				if pc.Coder == "" || strings.HasPrefix(pc.Coder, "beam:") || strings.Contains(pc.Coder, "?") {
					t.Errorf("PCollection %s has no readable coder: %q", pc.Name, pc.Coder)
				}
			}

			t.Run("dot", func(t *testing.T) {
				dot, err := exec.LookPath("dot")
				if err != nil {
					testenv.Skip(t, testenv.Tools, "Graphviz's dot is not installed")
				}
				for _, depth := range []string{"0", "1", "2"} {
					r := beamctl(t, "graph", file, "--format", "dot", "--depth", depth)
					if r.code != 0 {
						t.Fatalf("depth %s: exit %d\n%s", depth, r.code, r.stderr)
					}
					cmd := exec.Command(dot, "-Tsvg", "-o", os.DevNull)
					cmd.Stdin = strings.NewReader(r.stdout)
					if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
						t.Errorf("depth %s: dot: %v\n%s\n%s", depth, err, out, r.stdout)
					}
				}
			})
			t.Run("mermaid", func(t *testing.T) {
				r := beamctl(t, "graph", file, "--format", "mermaid")
				if r.code != 0 {
					t.Fatalf("exit %d\n%s", r.code, r.stderr)
				}
				checkMermaid(t, g, r.stdout)
			})
			t.Run("text", func(t *testing.T) {
				r := beamctl(t, "graph", file)
				if r.code != 0 {
					t.Fatalf("exit %d\n%s", r.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
				if len(lines) != len(g.Transforms) {
					t.Errorf("%d lines for %d transforms:\n%s", len(lines), len(g.Transforms), r.stdout)
				}
				for i, tr := range g.Transforms {
					want := strings.Repeat("  ", g.Depth(tr)-1) + g.ShortName(tr)
					if i < len(lines) && !strings.HasPrefix(lines[i], want+" ") && lines[i] != want {
						t.Errorf("line %d is %q, want %q first", i+1, lines[i], want)
					}
				}
			})
		})
	}
}

var (
	mermaidNode = regexp.MustCompile(`^\s*(t\d+)\["(.*)<br/><small>.*</small>"\]$`)
	mermaidEdge = regexp.MustCompile(`^\s*(t\d+) (-->|-\.->)\|"(.*)"\| (t\d+)$`)
	mermaidSub  = regexp.MustCompile(`^\s*subgraph (t\d+)\["(.*)"\]$`)
)

// checkMermaid checks a Mermaid flowchart of every transform against the
// graph: a node per leaf, a subgraph per composite, and an edge labelled
// with the coder from each PCollection's producer to each of its readers.
func checkMermaid(t *testing.T, g *graph.Graph, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "flowchart TD" {
		t.Fatalf("first line %q", lines[0])
	}
	id := map[string]string{}
	for i, tr := range g.Transforms {
		id["t"+strconv.Itoa(i)] = tr.UniqueName
	}
	unescape := strings.NewReplacer("#quot;", `"`, "#lt;", "<", "#gt;", ">").Replace
	var nodes, subs []string
	edges := map[string]bool{}
	depth := 0
	for _, l := range lines[1:] {
		switch {
		case mermaidNode.MatchString(l):
			m := mermaidNode.FindStringSubmatch(l)
			if tr := g.Transform(id[m[1]]); tr == nil || g.ShortName(tr) != unescape(m[2]) {
				t.Errorf("node %s is labelled %q, which is not its transform's name", m[1], m[2])
			}
			nodes = append(nodes, id[m[1]])
		case mermaidSub.MatchString(l):
			subs = append(subs, id[mermaidSub.FindStringSubmatch(l)[1]])
			depth++
		case strings.TrimSpace(l) == "end":
			depth--
		case mermaidEdge.MatchString(l):
			m := mermaidEdge.FindStringSubmatch(l)
			edges[id[m[1]]+" -> "+id[m[4]]+" "+unescape(m[3])] = true
		default:
			t.Errorf("line %q is no node, edge or subgraph", l)
		}
	}
	if depth != 0 {
		t.Errorf("subgraphs do not balance: %d left open", depth)
	}
	var leaves, composites []string
	for _, tr := range g.Transforms {
		if tr.Leaf() {
			leaves = append(leaves, tr.UniqueName)
		} else {
			composites = append(composites, tr.UniqueName)
		}
	}
	if !slices.Equal(nodes, leaves) || !slices.Equal(subs, composites) {
		t.Errorf("nodes %v and subgraphs %v, want the leaves %v and composites %v", nodes, subs, leaves, composites)
	}
	want := map[string]bool{}
	for _, pc := range g.PCollections {
		var producer string
		for _, tr := range g.Leaves() {
			for _, o := range tr.Outputs {
				if o == pc.ID && producer == "" {
					producer = tr.UniqueName
				}
			}
		}
		for _, tr := range g.Leaves() {
			for _, in := range tr.Inputs {
				if in == pc.ID && producer != "" {
					want[producer+" -> "+tr.UniqueName+" "+graph.Label(pc.Coder)] = true
				}
			}
		}
	}
	for e := range want {
		if !edges[e] {
			t.Errorf("no edge %s", e)
		}
	}
	for e := range edges {
		if !want[e] {
			t.Errorf("edge %s is no PCollection's", e)
		}
	}
}

// TestGraphLeavesNoProcess captures wordcount, for this machine by
// default, with a tag in its arguments: once graph has returned, no
// process carries the tag.
func TestGraphLeavesNoProcess(t *testing.T) {
	t.Parallel()
	// After the shared capture, the build is up to date.
	exampleGraph(t, beamExamples[0])
	tag := "graph-tag-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	dir := t.TempDir()
	out := filepath.Join(dir, "g.txt")
	r := beamctlProcessIn(t, beamExamplesModule(t), 10*time.Minute, "graph", beamExamples[0].pkg(), "--out", out,
		"--", "--input="+filepath.Join(dir, tag), "--output="+filepath.Join(dir, "counts.txt"))
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	if ps := processesRunning(t, tag); len(ps) > 0 {
		t.Errorf("%d processes of the capture outlived graph", len(ps))
	}
	data, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(data, []byte("textio.Read\n")) {
		t.Errorf("--out holds %q (%v), want the text graph", data, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("graph left %d entries in the directory of --out, want the graph alone: %v", len(entries), entries)
	}
}

// TestGraphRefuses checks that each bad input ends in one line naming the
// problem and the fix, with exit 2 for usage and 1 for a failed build.
func TestGraphRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notGraph := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notGraph, []byte(`{"schema": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"format", []string{"graph", notGraph, "--format", "png"}, 2, `--format "png" is not a format: use text, json, dot, mermaid, svg`},
		{"depth", []string{"graph", notGraph, "--depth", "-1"}, 2, "--depth -1 is negative"},
		{"out dir missing", []string{"graph", "./testdata/broken", "--out", filepath.Join(dir, "no", "g.svg")}, 2, "does not exist: create it"},
		{"out is a dir", []string{"graph", "./testdata/broken", "--out", dir}, 2, "is a directory: give the file to write"},
		{"two packages", []string{"graph", "./a", "./b"}, 2, "put pipeline arguments after --"},
		{"not a graph", []string{"graph", notGraph}, 2, `its schema is "x"`},
		{"graph file with args", []string{"graph", notGraph, "--", "--input=x"}, 2, "takes no pipeline arguments"},
		{"reserved arg", []string{"graph", "./testdata/broken", "--", "--runner=direct"}, 2, "the pipeline argument --runner=direct is beamctl's to set"},
		{"pipeline flag before --", []string{"graph", "./testdata/broken", "--input=x"}, 2, "pipeline arguments go after --"},
		{"broken", []string{"graph", "./testdata/broken"}, 1, "broken/main.go:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := beamctl(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit %d and %q", r.code, r.stdout, r.stderr, tc.code, tc.want)
			}
			if tc.code == 2 && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("a usage error of more than one line:\n%s", r.stderr)
			}
		})
	}
}

// TestGraphJSONIsTheDefaultOfOutputJSON: --output json makes the graph
// JSON; --format still chooses.
func TestGraphJSONIsTheDefaultOfOutputJSON(t *testing.T) {
	t.Parallel()
	file, _ := exampleGraph(t, beamExamples[0])
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if r := beamctl(t, "graph", file, "--output", "json"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("exit %d; --output json printed\n%s\nwant the JSON graph\n%s", r.code, r.stdout, r.stderr)
	}
	r := beamctl(t, "graph", file, "--output", "json", "--format", "text")
	if r.code != 0 || json.Valid([]byte(r.stdout)) || !strings.HasPrefix(r.stdout, "textio.Read\n") {
		t.Errorf("exit %d; --format text printed\n%s", r.code, r.stdout)
	}
}

// TestJobsGraph runs Beam's wordcount on the upstream prism job server:
// jobs graph of the job is the graph that graph captured of the same
// pipeline, but for the environment the run chose for its workers; graph,
// given the job server as run would be, adds no job to it.
func TestJobsGraph(t *testing.T) {
	t.Parallel()
	file, args := exampleGraph(t, beamExamples[0])
	want := readGraph(t, file)
	prism := startPrism(t)
	dir := t.TempDir()
	r := beamctlProcessIn(t, beamExamplesModule(t), 10*time.Minute, "run", beamExamples[0].pkg(), "--target", "host",
		"--endpoint", prism.Endpoint, "--environment", "loopback", "--output", "json",
		"--", "--input="+abs(t, wordcountInput), "--output="+filepath.Join(dir, "counts.txt"))
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res jobResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.JobID == "" {
		t.Fatalf("run's result line %q: %v", lines[len(lines)-1], err)
	}
	out := filepath.Join(dir, "job.json")
	if r := beamctl(t, "jobs", "graph", res.JobID, "--endpoint", prism.Endpoint, "--format", "json", "--out", out); r.code != 0 || r.stdout != "" {
		t.Fatalf("jobs graph: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	got := readGraph(t, out)
	if !reflect.DeepEqual(got.Roots, want.Roots) || !reflect.DeepEqual(got.Transforms, want.Transforms) || !reflect.DeepEqual(got.PCollections, want.PCollections) {
		t.Errorf("jobs graph differs from graph of the same pipeline:\n%s", graphDiff(t, want, got))
	}
	// A job server in the environment, as for run, is not graph's to use.
	cmd := exec.Command(beamctlBinary(t), "graph", file, "--out", filepath.Join(dir, "g.txt"))
	cmd.Env = append(os.Environ(), "BEAMCTL_ENDPOINT="+prism.Endpoint)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("graph: %v\n%s", err, out)
	}
	cmd = exec.Command(beamctlBinary(t), append([]string{"graph", beamExamples[0].pkg(), "--out", filepath.Join(dir, "g.txt"), "--"}, args...)...)
	cmd.Dir, cmd.Env = beamExamplesModule(t), append(os.Environ(), "BEAMCTL_ENDPOINT="+prism.Endpoint)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("graph: %v\n%s", err, out)
	}
	if r := beamctl(t, "jobs", "list", "--endpoint", prism.Endpoint, "--output", "json"); r.code != 0 || strings.Count(r.stdout, `"job_id"`) != 1 {
		t.Errorf("the job server has other jobs than the run's after graph: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := beamctl(t, "jobs", "graph", "job-nope", "--endpoint", prism.Endpoint); r.code != 1 || !strings.Contains(r.stderr, "job job-nope not found") {
		t.Errorf("an unknown job: exit %d\n%s", r.code, r.stderr)
	}
	if r := beamctl(t, "jobs", "graph", res.JobID, "--endpoint", prism.Endpoint, "--format", "gif"); r.code != 2 {
		t.Errorf("a bad format: exit %d, want 2\n%s", r.code, r.stderr)
	}
}

// graphDiff shows two graphs' text side by side, for a failure.
func graphDiff(t *testing.T, a, b *graph.Graph) string {
	t.Helper()
	var ab, bb bytes.Buffer
	if err := graph.WriteJSON(&ab, a); err != nil {
		t.Fatal(err)
	}
	if err := graph.WriteJSON(&bb, b); err != nil {
		t.Fatal(err)
	}
	return "want:\n" + ab.String() + "\ngot:\n" + bb.String()
}

// TestGraphDiff compares Beam's wordcount with a copy that has one ParDo
// more: the diff names exactly that ParDo and its output, and exits 1; a
// graph compared with itself, from a JSON file or a build output
// directory, has no difference and exits 0.
func TestGraphDiff(t *testing.T) {
	t.Parallel()
	old, args := exampleGraph(t, beamExamples[0])
	r := beamctlProcessIn(t, beamExamplesModule(t), 10*time.Minute, append([]string{"graph", "example.com/beamexamples/wordcountlower",
		"--target", "host", "--diff", old, "--format", "json", "--"}, args...)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 for a difference\n%s", r.code, r.stderr)
	}
	var d graph.Diff
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("not a JSON diff: %v\n%s", err, r.stdout)
	}
	want := []graph.Change{
		{Op: graph.Added, Kind: graph.KindTransform, Name: "CountWords/main.lowerFn", What: "pardo"},
		{Op: graph.Added, Kind: graph.KindPCollection, Name: "CountWords/main.lowerFn.i0", What: "string"},
	}
	if !reflect.DeepEqual(d.Changes, want) {
		t.Errorf("changes %+v, want %+v", d.Changes, want)
	}

	if r := beamctl(t, "graph", old, "--diff", old); r.code != 0 || r.stdout != "" {
		t.Errorf("a graph against itself: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	dist := builtDist(t)
	input, output := "--input="+abs(t, wordcountInput), "--output="+filepath.Join(t.TempDir(), "counts.txt")
	if r := beamctl(t, "graph", dist, "--diff", dist, "--", input, output); r.code != 0 || r.stdout != "" {
		t.Errorf("a build output against itself: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"graph", old, "--diff", old, "--format", "dot"}, "--diff prints what changed as text or json, not --format dot"},
		{[]string{"graph", old, "--diff", ""}, "--diff is empty"},
		{[]string{"graph", old, "--diff", t.TempDir()}, "is neither a build output directory"},
	} {
		if r := beamctl(t, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d\n%s\nwant exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestGraphSVG draws Beam's examples with beamctl-svg, beside beamctl: the
// SVG is well-formed XML that names every leaf transform, in full in its
// titles and by its name within its composite in what it shows.
func TestGraphSVG(t *testing.T) {
	t.Parallel()
	svgBinary(t)
	for _, e := range beamExamples {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			file, _ := exampleGraph(t, e)
			g := readGraph(t, file)
			r := beamctlProcess(t, "graph", file, "--format", "svg")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			titles, texts, err := svgtest.Names([]byte(r.stdout))
			if err != nil {
				t.Fatalf("not well-formed XML: %v\n%s", err, r.stdout)
			}
			for _, tr := range g.Leaves() {
				if !slices.Contains(titles, tr.UniqueName) {
					t.Errorf("no title names %s", tr.UniqueName)
				}
				if !slices.Contains(texts, g.ShortName(tr)) {
					t.Errorf("no text shows %s", g.ShortName(tr))
				}
			}
		})
	}
	t.Run("png", func(t *testing.T) {
		// Drawn as a person sees it, by a renderer with the fonts.
		rsvg, err := exec.LookPath("rsvg-convert")
		if err != nil {
			testenv.Skip(t, testenv.Tools, "rsvg-convert is not installed")
		}
		file, _ := exampleGraph(t, beamExamples[0])
		r := beamctlProcess(t, "graph", file, "--format", "svg")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		cmd := exec.Command(rsvg, "--format", "png")
		cmd.Stdin = strings.NewReader(r.stdout)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("rsvg-convert: %v\n%s", err, stderr.String())
		}
		img, err := png.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		// Tall and narrow, as a chain of transforms is drawn; a picture
		// whose text the renderer failed to measure would not be.
		if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 2*b.Dx() {
			t.Errorf("wordcount is drawn %dx%d", b.Dx(), b.Dy())
		}
	})
	if _, err := exec.LookPath("beamctl-svg"); err == nil {
		return
	}
	// In process, beamctl runs from the test binary, beside which there is
	// no beamctl-svg.
	file, _ := exampleGraph(t, beamExamples[0])
	r := beamctl(t, "graph", file, "--format", "svg")
	if r.code != 2 || !strings.Contains(r.stderr, "beamctl-svg, which draws the graph as SVG, is not installed: install it beside beamctl or on PATH") ||
		!strings.Contains(r.stderr, "or draw --format dot with Graphviz") {
		t.Errorf("without beamctl-svg: exit %d\n%s", r.code, r.stderr)
	}
}

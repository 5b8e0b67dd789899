package graph

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1pb "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx/v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/testenv"
)

func spec(urn string, payload []byte) *pipepb.FunctionSpec {
	return &pipepb.FunctionSpec{Urn: urn, Payload: payload}
}

func coder(urn string, comps ...string) *pipepb.Coder {
	return &pipepb.Coder{Spec: spec(urn, nil), ComponentCoderIds: comps}
}

func custom(t *testing.T, cc *v1pb.CustomCoder) *pipepb.Coder {
	t.Helper()
	data, err := proto.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	return &pipepb.Coder{Spec: spec(beam.GoCustomCoderURN, []byte(base64.StdEncoding.EncodeToString(data)))}
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCoderName(t *testing.T) {
	row := &pipepb.Schema{Fields: []*pipepb.Field{
		{Name: "Path", Type: &pipepb.FieldType{TypeInfo: &pipepb.FieldType_AtomicType{AtomicType: pipepb.AtomicType_STRING}}},
		{Name: "Tags", Type: &pipepb.FieldType{TypeInfo: &pipepb.FieldType_ArrayType{ArrayType: &pipepb.ArrayType{
			ElementType: &pipepb.FieldType{TypeInfo: &pipepb.FieldType_AtomicType{AtomicType: pipepb.AtomicType_INT64}}}}}},
		{Name: "When", Type: &pipepb.FieldType{Nullable: true, TypeInfo: &pipepb.FieldType_LogicalType{LogicalType: &pipepb.LogicalType{Urn: "time.Time"}}}},
	}}
	coders := map[string]*pipepb.Coder{
		"str":    coder(beam.StringCoderURN),
		"int":    custom(t, &v1pb.CustomCoder{Name: "varintz", Type: &v1pb.Type{Kind: v1pb.Type_INT}}),
		"lp":     coder(beam.LengthPrefixCoderURN, "int"),
		"kv":     coder(beam.KVCoderURN, "str", "lp"),
		"iter":   coder(beam.IterableCoderURN, "lp"),
		"gbk":    coder(beam.KVCoderURN, "str", "iter"),
		"ext":    custom(t, &v1pb.CustomCoder{Name: "x", Type: &v1pb.Type{Kind: v1pb.Type_EXTERNAL, ExternalKey: "github.com/a/b/fileio.FileMetadata"}}),
		"ptr":    custom(t, &v1pb.CustomCoder{Name: "x", Type: &v1pb.Type{Kind: v1pb.Type_PTR, Element: &v1pb.Type{Kind: v1pb.Type_EXTERNAL, ExternalKey: "main.T"}}}),
		"slice":  custom(t, &v1pb.CustomCoder{Name: "x", Type: &v1pb.Type{Kind: v1pb.Type_SLICE, Element: &v1pb.Type{Kind: v1pb.Type_FLOAT64}}}),
		"struct": custom(t, &v1pb.CustomCoder{Name: "x", Type: &v1pb.Type{Kind: v1pb.Type_STRUCT, Fields: []*v1pb.Type_StructField{{Name: "A", Type: &v1pb.Type{Kind: v1pb.Type_BOOL}}}}}),
		"named":  custom(t, &v1pb.CustomCoder{Name: "mycoder"}),
		"junk":   {Spec: spec(beam.GoCustomCoderURN, []byte("not base64!"))},
		"row":    {Spec: spec(beam.RowCoderURN, marshal(t, row))},
		"badrow": {Spec: spec(beam.RowCoderURN, []byte{0xff})},
		"other":  coder("beam:coder:mine:v1", "str"),
		"bare":   coder("beam:coder:plain:v1"),
		"wv":     coder(beam.WindowedValueCoderURN, "str", "gw"),
		"gw":     coder(beam.GlobalWindowCoderURN),
		"loop":   coder(beam.KVCoderURN, "loop", "str"),
		"bytes":  coder(beam.BytesCoderURN),
		"varint": coder(beam.VarIntCoderURN),
	}
	for _, tc := range []struct{ id, want string }{
		{"str", "string"},
		{"kv", "KV<string,int>"},
		{"gbk", "KV<string,Iterable<int>>"},
		{"ext", "fileio.FileMetadata"},
		{"ptr", "*main.T"},
		{"slice", "[]float64"},
		{"struct", "struct{A bool}"},
		{"named", "mycoder"},
		{"junk", beam.GoCustomCoderURN},
		{"row", "Row{Path string, Tags []int64, When *time.Time}"},
		{"badrow", "Row"},
		{"other", "beam:coder:mine:v1<string>"},
		{"bare", "beam:coder:plain:v1"},
		{"wv", "WindowedValue<string,GlobalWindow>"},
		{"bytes", "[]byte"},
		{"varint", "int64"},
		{"missing", "?missing"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			if got := CoderName(coders, tc.id); got != tc.want {
				t.Errorf("CoderName(%s) = %q, want %q", tc.id, got, tc.want)
			}
		})
	}
	if got := CoderName(coders, "loop"); !strings.Contains(got, "…") {
		t.Errorf("a coder that contains itself is named %q, want a name cut short with …", got)
	}
}

func TestWindowing(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *pipepb.WindowingStrategy
		want string
	}{
		{"global", &pipepb.WindowingStrategy{WindowFn: spec(beam.GlobalWindowsURN, nil), Trigger: &pipepb.Trigger{Trigger: &pipepb.Trigger_Default_{}}}, "global"},
		{"fixed", &pipepb.WindowingStrategy{WindowFn: spec(beam.FixedWindowsURN, marshal(t, &pipepb.FixedWindowsPayload{Size: durationpb.New(time.Minute)}))}, "fixed(1m0s)"},
		{"sliding", &pipepb.WindowingStrategy{WindowFn: spec(beam.SlidingWindowsURN, marshal(t, &pipepb.SlidingWindowsPayload{Size: durationpb.New(time.Hour), Period: durationpb.New(time.Minute)}))}, "sliding(1h0m0s every 1m0s)"},
		{"sessions", &pipepb.WindowingStrategy{WindowFn: spec(beam.SessionWindowsURN, marshal(t, &pipepb.SessionWindowsPayload{GapSize: durationpb.New(10 * time.Second)})),
			AccumulationMode: pipepb.AccumulationMode_ACCUMULATING, AllowedLateness: 5000,
			Trigger: &pipepb.Trigger{Trigger: &pipepb.Trigger_AfterEach_{AfterEach: &pipepb.Trigger_AfterEach{}}}}, "sessions(10s), trigger after_each, accumulating, lateness 5s"},
		{"custom", &pipepb.WindowingStrategy{WindowFn: spec("beam:window_fn:mine:v1", nil)}, "beam:window_fn:mine:v1"},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := windowingName(tc.w); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// pipeline is a small pipeline as the Go SDK builds one: a composite read
// of two parts, a composite count holding a nested combine, a ParDo with a
// side input and a sink.
func pipeline(t *testing.T) *pipepb.Pipeline {
	t.Helper()
	pardo := func(side ...string) *pipepb.FunctionSpec {
		pl := &pipepb.ParDoPayload{SideInputs: map[string]*pipepb.SideInput{}}
		for _, s := range side {
			pl.SideInputs[s] = &pipepb.SideInput{}
		}
		return spec(beam.ParDoURN, marshal(t, pl))
	}
	io := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	pc := func(c string) *pipepb.PCollection {
		return &pipepb.PCollection{CoderId: c, IsBounded: pipepb.IsBounded_BOUNDED, WindowingStrategyId: "w0"}
	}
	return &pipepb.Pipeline{
		RootTransformIds: []string{"s1", "s2", "e5"},
		Components: &pipepb.Components{
			Transforms: map[string]*pipepb.PTransform{
				"s1": {UniqueName: "Read", Subtransforms: []string{"e1", "e2"}, Outputs: io("n2", "n2"), EnvironmentId: "go"},
				"e1": {UniqueName: "Read/Impulse", Spec: spec("beam:transform:impulse:v1", nil), Outputs: io("i0", "n1")},
				"e2": {UniqueName: "Read/main.readFn", Spec: pardo(), Inputs: io("i0", "n1"), Outputs: io("i0", "n2"), EnvironmentId: "go"},
				"s2": {UniqueName: "Count", Subtransforms: []string{"e3", "s3"}, Inputs: io("n2", "n2"), Outputs: io("n4", "n4"), EnvironmentId: "go"},
				"e3": {UniqueName: "Count/main.pairFn", Spec: pardo(), Inputs: io("i0", "n2"), Outputs: io("i0", "n3"), EnvironmentId: "go"},
				"s3": {UniqueName: "Count/Sum", Spec: spec("beam:transform:combine_per_key:v1", nil), Subtransforms: []string{"e4"}, Inputs: io("n3", "n3"), Outputs: io("n4", "n4")},
				"e4": {UniqueName: "Count/Sum/GBK", Spec: spec("beam:transform:group_by_key:v1", nil), Inputs: io("i0", "n3"), Outputs: io("i0", "n4")},
				"e5": {UniqueName: "main.writeFn", Spec: pardo("i1"), Inputs: io("i0", "n4", "i1", "n2"), EnvironmentId: "go"},
			},
			Pcollections: map[string]*pipepb.PCollection{
				"n1": pc("bytes"), "n2": pc("str"), "n3": pc("kv"),
				"n4": {CoderId: "gbk", IsBounded: pipepb.IsBounded_UNBOUNDED, WindowingStrategyId: "w0"},
			},
			Coders: map[string]*pipepb.Coder{
				"bytes": coder(beam.BytesCoderURN), "str": coder(beam.StringCoderURN), "int": coder(beam.VarIntCoderURN),
				"kv": coder(beam.KVCoderURN, "str", "int"), "iter": coder(beam.IterableCoderURN, "int"), "gbk": coder(beam.KVCoderURN, "str", "iter"),
			},
			WindowingStrategies: map[string]*pipepb.WindowingStrategy{"w0": {WindowFn: spec(beam.GlobalWindowsURN, nil)}},
			Environments:        map[string]*pipepb.Environment{"go": {Urn: "beam:env:docker:v1"}},
		},
	}
}

func TestFromPipeline(t *testing.T) {
	g, err := FromPipeline(pipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range g.Transforms {
		names = append(names, tr.UniqueName)
	}
	want := []string{"Read", "Read/Impulse", "Read/main.readFn", "Count", "Count/main.pairFn", "Count/Sum", "Count/Sum/GBK", "main.writeFn"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("transforms %v, want the tree depth first %v", names, want)
	}
	if got := g.Transform("Count/Sum/GBK"); got.Parent != "Count/Sum" || g.Depth(got) != 3 || g.ShortName(got) != "GBK" {
		t.Errorf("GBK: parent %q, depth %d, short name %q", got.Parent, g.Depth(got), g.ShortName(got))
	}
	if got := g.Transform("main.writeFn").SideInputs; !reflect.DeepEqual(got, []string{"i1"}) {
		t.Errorf("side inputs %v, want [i1]", got)
	}
	var pcs []string
	for _, pc := range g.PCollections {
		pcs = append(pcs, pc.ID+"="+pc.Name+":"+pc.Coder)
	}
	wantPCs := []string{"n1=Read/Impulse.i0:[]byte", "n2=Read/main.readFn.i0:string", "n3=Count/main.pairFn.i0:KV<string,int64>", "n4=Count/Sum/GBK.i0:KV<string,Iterable<int64>>"}
	if !reflect.DeepEqual(pcs, wantPCs) {
		t.Errorf("pcollections %v, want %v", pcs, wantPCs)
	}
	if g.PCollection("n4").Bounded || !g.PCollection("n1").Bounded || g.PCollection("n1").Windowing != "global" {
		t.Errorf("bounded or windowing wrong: %+v %+v", g.PCollection("n4"), g.PCollection("n1"))
	}
	if len(g.Leaves()) != 5 {
		t.Errorf("%d leaves, want 5", len(g.Leaves()))
	}
}

func TestFromPipelineRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*pipepb.Pipeline)
		want   string
	}{
		{"empty", func(p *pipepb.Pipeline) { p.Components.Transforms = nil }, "no transforms"},
		{"missing part", func(p *pipepb.Pipeline) { p.Components.Transforms["s1"].Subtransforms = []string{"e1", "zz"} }, `names a part "zz"`},
		{"missing root", func(p *pipepb.Pipeline) { p.RootTransformIds = append(p.RootTransformIds, "zz") }, `root transform "zz"`},
		{"shared part", func(p *pipepb.Pipeline) { p.Components.Transforms["s2"].Subtransforms = []string{"e3", "s3", "e1"} }, "more than one composite"},
		{"missing pcollection", func(p *pipepb.Pipeline) { delete(p.Components.Pcollections, "n3") }, `PCollection "n3"`},
		{"duplicate name", func(p *pipepb.Pipeline) { p.Components.Transforms["e5"].UniqueName = "Read" }, `two transforms are named "Read"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline(t)
			tc.break_(p)
			_, err := FromPipeline(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := FromPipeline(&pipepb.Pipeline{}); !errors.Is(err, ErrNoPipeline) {
		t.Errorf("an empty pipeline: %v", err)
	}
}

func render(t *testing.T, g *Graph, f Format, depth int) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, g, RenderOptions{Format: f, Depth: depth}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRender(t *testing.T) {
	g, err := FromPipeline(pipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		format    Format
		depth     int
		want, not []string
	}{
		{"text", Text, 0, []string{
			"Read\n",
			"  Impulse      impulse          → n1 []byte\n",
			"  main.readFn  pardo            n1 → n2 string\n",
			"  Sum          combine_per_key\n",
			"    GBK        group_by_key     n3 → n4 KV<string,Iterable<int64>>\n",
			"main.writeFn   pardo            n4, side n2 →\n",
		}, []string{" \n"}},
		{"text depth 1", Text, 1, []string{
			"Read          (2 transforms)  → n2 string\n",
			"Count         (2 transforms)  n2 → n4 KV<string,Iterable<int64>>\n",
			"main.writeFn  pardo           n4, side n2 →\n",
		}, []string{"Impulse", "GBK"}},
		{"text depth 2", Text, 2, []string{"  Sum          combine_per_key (1 transform)  n3 → n4"}, []string{"GBK"}},
		{"dot", DOT, 0, []string{
			"digraph pipeline {",
			`subgraph cluster_1 {`,
			`label="Read"`,
			`"Read/Impulse" [label=<Impulse<BR/><FONT POINT-SIZE="9" COLOR="#555555">impulse</FONT>>, tooltip="Read/Impulse"];`,
			`"Count/main.pairFn" -> "Count/Sum/GBK" [label="KV<string,int64>", tooltip="Count/main.pairFn.i0: KV<string,int64>"];`,
			`"Read/main.readFn" -> "main.writeFn" [label="string", tooltip="Read/main.readFn.i0: string", style=dashed];`,
		}, nil},
		{"dot depth 1", DOT, 1, []string{
			`"Read" [label=<Read<BR/><FONT POINT-SIZE="9" COLOR="#555555">(2 transforms)</FONT>>, tooltip="Read", shape=box3d`,
			`"Read" -> "Count" [label="string"`,
			`"Count" -> "main.writeFn" [label="KV<string,Iterable<int64>>"`,
		}, []string{"cluster", "Impulse"}},
		{"mermaid", Mermaid, 0, []string{
			"flowchart TD\n",
			`  subgraph t0["Read"]` + "\n",
			`    t1["Impulse<br/><small>impulse</small>"]` + "\n",
			"  end\n",
			`  t4 -->|"KV#lt;string,int64#gt;"| t6` + "\n",
			`  t2 -.->|"string"| t7` + "\n",
		}, []string{"<string"}},
		{"mermaid depth 1", Mermaid, 1, []string{
			`  t0["Read<br/><small>(2 transforms)</small>"]`,
			`  t0 -->|"string"| t3`,
		}, []string{"subgraph", "t1["}},
		{"json", JSON, 1, []string{`"schema": "beamctl.graph/v1"`, `"unique_name": "Count/Sum/GBK"`, `"side_inputs": [`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := render(t, g, tc.format, tc.depth)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q:\n%s", n, out)
				}
			}
		})
	}
	if err := Render(&bytes.Buffer{}, g, RenderOptions{Format: "png"}); err == nil {
		t.Error("an unknown format rendered")
	}
	if err := Render(&bytes.Buffer{}, g, RenderOptions{Depth: -1}); err == nil {
		t.Error("a negative depth rendered")
	}
}

// TestDOTParses has Graphviz's own dot read the DOT of every depth.
func TestWrapLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"string", "string"},
		{"KV<string,Iterable<int64>>", "KV<string,Iterable<int64>>"},
		{"Row{Path string, Size int64, LastModified time.Time}", "Row{Path string,\nSize int64,\nLastModified time.Time}"},
		{"Row{A <b>, C d}", "Row{A <b>, C d}"},
	} {
		if got := wrapLabel(tc.in); got != tc.want {
			t.Errorf("wrapLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDOTParses(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		testenv.Skip(t, testenv.Tools, "Graphviz's dot is not installed")
	}
	g, err := FromPipeline(pipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	for depth := range 4 {
		cmd := exec.Command(dot, "-Tcanon")
		cmd.Stdin = strings.NewReader(render(t, g, DOT, depth))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("depth %d: dot: %v\n%s", depth, err, out)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	g, err := FromPipeline(pipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, g); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	if render(t, back, Text, 0) != render(t, g, Text, 0) || !reflect.DeepEqual(back.Transforms, g.Transforms) || !reflect.DeepEqual(back.PCollections, g.PCollections) {
		t.Error("the graph read back differs from the one written")
	}
	for _, tc := range []struct{ name, in, want string }{
		{"not json", "digraph {}", "reading a graph"},
		{"other schema", `{"schema": "other"}`, `its schema is "other"`},
		{"dangling", `{"schema": "beamctl.graph/v1", "transforms": [{"unique_name": "a", "inputs": {"i0": "n9"}}], "pcollections": [{"id": "n1"}]}`, `PCollection "n9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadJSON(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*pipepb.Pipeline)
		want   []string
	}{
		{"same", func(*pipepb.Pipeline) {}, nil},
		{"ids renumbered", func(p *pipepb.Pipeline) {
			// An SDK numbers ids in construction order: an insertion
			// renumbers them, which is no change of the pipeline.
			ts := p.Components.Transforms
			ts["x5"] = ts["e5"]
			delete(ts, "e5")
			p.RootTransformIds[2] = "x5"
			pcs := p.Components.Pcollections
			pcs["n9"] = pcs["n2"]
			delete(pcs, "n2")
			for _, tr := range ts {
				for _, m := range []map[string]string{tr.Inputs, tr.Outputs} {
					for tag, id := range m {
						if id == "n2" {
							m[tag] = "n9"
						}
					}
				}
			}
		}, nil},
		{"added ParDo", func(p *pipepb.Pipeline) {
			ts := p.Components.Transforms
			ts["e6"] = &pipepb.PTransform{UniqueName: "Count/main.lowerFn", Spec: spec(beam.ParDoURN, nil), Inputs: map[string]string{"i0": "n2"}, Outputs: map[string]string{"i0": "n5"}}
			ts["s2"].Subtransforms = []string{"e6", "e3", "s3"}
			ts["e3"].Inputs = map[string]string{"i0": "n5"}
			p.Components.Pcollections["n5"] = &pipepb.PCollection{CoderId: "str", IsBounded: pipepb.IsBounded_BOUNDED, WindowingStrategyId: "w0"}
		}, []string{"+ transform Count/main.lowerFn (pardo)", "+ pcollection Count/main.lowerFn.i0 (string)"}},
		{"removed sink", func(p *pipepb.Pipeline) {
			delete(p.Components.Transforms, "e5")
			p.RootTransformIds = p.RootTransformIds[:2]
		}, []string{"- transform main.writeFn (pardo)"}},
		{"coder changed", func(p *pipepb.Pipeline) { p.Components.Pcollections["n3"].CoderId = "gbk" }, []string{
			"~ pcollection Count/main.pairFn.i0", "    coder: KV<string,int64> → KV<string,Iterable<int64>>"}},
		{"rewired", func(p *pipepb.Pipeline) {
			p.Components.Transforms["e5"].Inputs = map[string]string{"i0": "n3", "i1": "n2"}
			p.Components.Transforms["e5"].EnvironmentId = "py"
		}, []string{"~ transform main.writeFn", "    environment: go → py", "    input i0: Count/Sum/GBK.i0 → Count/main.pairFn.i0"}},
		{"unbounded and windowed", func(p *pipepb.Pipeline) {
			p.Components.Pcollections["n1"].IsBounded = pipepb.IsBounded_UNBOUNDED
			p.Components.Pcollections["n1"].WindowingStrategyId = "w1"
			p.Components.WindowingStrategies["w1"] = &pipepb.WindowingStrategy{WindowFn: spec(beam.FixedWindowsURN, marshal(t, &pipepb.FixedWindowsPayload{Size: durationpb.New(time.Minute)}))}
		}, []string{"~ pcollection Read/Impulse.i0", "    bounded: true → false", "    windowing: global → fixed(1m0s)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := FromPipeline(pipeline(t))
			if err != nil {
				t.Fatal(err)
			}
			p := pipeline(t)
			tc.change(p)
			new, err := FromPipeline(p)
			if err != nil {
				t.Fatal(err)
			}
			d := Compare(old, new)
			var b bytes.Buffer
			if err := WriteDiff(&b, d, Text); err != nil {
				t.Fatal(err)
			}
			var lines []string
			if s := strings.TrimSuffix(b.String(), "\n"); s != "" {
				lines = strings.Split(s, "\n")
			}
			if !slices.Equal(lines, tc.want) || d.Empty() != (len(tc.want) == 0) {
				t.Errorf("diff:\n%s\nwant:\n%s", b.String(), strings.Join(tc.want, "\n"))
			}
			b.Reset()
			if err := WriteDiff(&b, d, JSON); err != nil || !strings.HasPrefix(b.String(), `{`+"\n"+`  "changes": [`) {
				t.Errorf("JSON diff %v:\n%s", err, b.String())
			}
		})
	}
	if err := WriteDiff(&bytes.Buffer{}, &Diff{}, DOT); err == nil {
		t.Error("a diff was written as DOT")
	}
}

func TestRenderSVG(t *testing.T) {
	g, err := FromPipeline(pipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := Render(&bytes.Buffer{}, g, RenderOptions{Format: SVG}); !errors.Is(err, ErrNoSVG) {
		t.Errorf("SVG with nothing to draw it: %v, want ErrNoSVG", err)
	}
	var drawn string
	draw := func(w io.Writer, dot []byte) error {
		drawn = string(dot)
		_, err := io.WriteString(w, "<svg/>")
		return err
	}
	var b bytes.Buffer
	if err := Render(&b, g, RenderOptions{Format: SVG, Depth: 1, DrawSVG: draw}); err != nil || b.String() != "<svg/>" {
		t.Fatalf("Render: %v, %q", err, b.String())
	}
	if drawn != render(t, g, DOT, 1) {
		t.Errorf("SVG drawn from\n%s\nwant the DOT of the same depth", drawn)
	}
}

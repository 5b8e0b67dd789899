package svg_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/graph/svg"
	"github.com/beamctl/beamctl/internal/svgtest"
)

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name, dot string
		want      []string
		err       string
	}{
		{"chain", `digraph p { "Read/Impulse" [label="Impulse"]; "Read/Impulse" -> "main.f<x>" [label="KV<string,int>"]; }`,
			[]string{"Read/Impulse", "main.f<x>"}, ""},
		{"cluster", `digraph p { subgraph cluster_1 { label="Read"; "a"; "b"; } "a" -> "b"; }`, []string{"a", "b"}, ""},
		{"not dot", `digraph p { -> }`, nil, "reading the DOT graph"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := svg.Render(context.Background(), &b, []byte(tc.dot))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			titles, _, err := svgtest.Names(b.Bytes())
			if err != nil {
				t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
			}
			for _, w := range tc.want {
				found := false
				for _, title := range titles {
					found = found || title == w
				}
				if !found {
					t.Errorf("no title %q among %q", w, titles)
				}
			}
		})
	}
}

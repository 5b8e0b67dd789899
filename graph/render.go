package graph

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Format is a way to render a graph.
type Format string

// The formats.
const (
	Text    Format = "text"
	JSON    Format = "json"
	DOT     Format = "dot"
	Mermaid Format = "mermaid"
	SVG     Format = "svg"
)

// Formats lists every Format, for help, completion and validation.
var Formats = []Format{Text, JSON, DOT, Mermaid, SVG}

// RenderOptions say how to render a graph.
type RenderOptions struct {
	Format Format
	// Depth collapses composites deeper than it into one node each (1:
	// only the top-level transforms); 0 shows every transform. JSON always
	// holds every transform.
	Depth int
	// DrawSVG draws the DOT graph dot as SVG to w, for the SVG format
	// (package svg does, in a program of its own).
	DrawSVG func(w io.Writer, dot []byte) error
}

// ErrNoSVG is an SVG asked of a Render given nothing to draw it with.
var ErrNoSVG = errors.New("no SVG renderer")

// Render writes g to w as o says.
func Render(w io.Writer, g *Graph, o RenderOptions) error {
	if o.Depth < 0 {
		return fmt.Errorf("depth %d is negative", o.Depth)
	}
	switch o.Format {
	case Text, "":
		return renderText(w, g, o.Depth)
	case JSON:
		return WriteJSON(w, g)
	case DOT:
		return renderDOT(w, g, o.Depth)
	case Mermaid:
		return renderMermaid(w, g, o.Depth)
	case SVG:
		if o.DrawSVG == nil {
			return ErrNoSVG
		}
		var dot bytes.Buffer
		if err := renderDOT(&dot, g, o.Depth); err != nil {
			return err
		}
		return o.DrawSVG(w, dot.Bytes())
	}
	return fmt.Errorf("format %q is not one of text, json, dot, mermaid, svg", o.Format)
}

// WriteJSON writes g as indented JSON.
func WriteJSON(w io.Writer, g *Graph) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(g)
}

// ReadJSON reads a graph WriteJSON wrote.
func ReadJSON(r io.Reader) (*Graph, error) {
	var g Graph
	if err := json.NewDecoder(r).Decode(&g); err != nil {
		return nil, fmt.Errorf("reading a graph: %w", err)
	}
	if g.Schema != Schema {
		return nil, fmt.Errorf("not a graph: its schema is %q, want %q", g.Schema, Schema)
	}
	if err := g.index(); err != nil {
		return nil, err
	}
	return &g, nil
}

// flow words PCollections for text: each with its element coder.
func flow(pcs []*PCollection) string {
	parts := make([]string, len(pcs))
	for i, pc := range pcs {
		parts[i] = pc.ID + " " + pc.Coder
	}
	return strings.Join(parts, ", ")
}

// renderText writes the composite tree, a transform a line: its name,
// indented under its composite, what it does, and for each node what it
// reads → what it writes, with each output's element coder.
func renderText(w io.Writer, g *Graph, depth int) error {
	v := newView(g, depth)
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	var walk func(t *Transform, indent string)
	walk = func(t *Transform, indent string) {
		name := indent + g.ShortName(t)
		if v.isNode(t) {
			_, kind := v.nodeLabel(t)
			in, out := v.boundary(t)
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, kind, strings.TrimSpace(v.inputs(t, in)+" → "+flow(out)))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t\n", name, ShortURN(t.URN))
		}
		for _, c := range v.children(t) {
			walk(c, indent+"  ")
		}
	}
	for _, r := range v.children(nil) {
		walk(r, "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A composite's empty columns would leave its line padded.
	text := strings.TrimSuffix(buf.String(), "\n")
	for line := range strings.SplitSeq(text, "\n") {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	return nil
}

// inputs words what node n reads, side inputs marked.
func (v *view) inputs(n *Transform, in []*PCollection) string {
	parts := make([]string, len(in))
	for i, pc := range in {
		parts[i] = pc.ID
		if n.Leaf() && v.side[[2]string{pc.ID, n.UniqueName}] {
			parts[i] = "side " + pc.ID
		}
	}
	return strings.Join(parts, ", ")
}

// maxLabel bounds an edge label in a picture: a row's fields can run to
// hundreds of characters, which the JSON and text forms keep.
const maxLabel = 48

// maxWrapped bounds an edge label that wraps onto lines of its own.
const maxWrapped = 2 * maxLabel

// Label is a PCollection's coder as a Mermaid picture labels its edge.
func Label(coder string) string { return truncate(coder, maxLabel) }

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// wrapWidth is how wide an edge label's lines may grow in a picture
// before the label wraps.
const wrapWidth = 24

// wrapLabel breaks a label between a row's fields (", ", where a KV's
// "," does not break) into lines of about wrapWidth: a long label on one
// line widens the picture, and a renderer's guess of its width can cut
// it off.
func wrapLabel(s string) string {
	var lines []string
	line := ""
	for part := range strings.SplitAfterSeq(s, ", ") {
		if line != "" && utf8.RuneCountInString(line+part) > wrapWidth {
			lines = append(lines, strings.TrimSuffix(line, " "))
			line = ""
		}
		line += part
	}
	return strings.Join(append(lines, line), "\n")
}

// nodeLabel is the label of node n: its name within its cluster, then
// what it does.
func (v *view) nodeLabel(n *Transform) (name, kind string) {
	kind = ShortURN(n.URN)
	if !n.Leaf() {
		k := v.parts(n)
		kind = strings.TrimSpace(fmt.Sprintf("%s (%d transform%s)", kind, k, plural(k)))
	}
	return v.g.ShortName(n), kind
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// renderDOT writes g as a Graphviz digraph: nodes are named by the
// transforms' unique names, so a picture's elements carry them.
func renderDOT(w io.Writer, g *Graph, depth int) error {
	v := newView(g, depth)
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "digraph pipeline {")
	fmt.Fprintln(b, `  rankdir=TB;`)
	fmt.Fprintln(b, `  graph [fontname="Helvetica", fontsize=12, labeljust=l, nodesep=0.4, ranksep=0.45, pad=0.2];`)
	// Room around a node's name: a renderer without the font's metrics
	// guesses its width.
	fmt.Fprintln(b, `  node [shape=box, style="rounded,filled", fillcolor="#e8f0fe", color="#4a6fa5", fontname="Helvetica", fontsize=12, margin="0.25,0.06"];`)
	fmt.Fprintln(b, `  edge [fontname="Helvetica", fontsize=10, color="#555555", fontcolor="#333333"];`)
	clusters := 0
	indent := func(level int) string { return strings.Repeat("  ", level) }
	v.draw(func(t *Transform, level int) {
		name, kind := v.nodeLabel(t)
		// What the transform does is told smaller, below its name.
		label := fmt.Sprintf(`<%s<BR/><FONT POINT-SIZE="9" COLOR="#555555">%s</FONT>>`, html.EscapeString(name), html.EscapeString(kind))
		attrs := fmt.Sprintf("label=%s, tooltip=%s", label, dotQuote(t.UniqueName))
		if !t.Leaf() {
			attrs += `, shape=box3d, style=filled, fillcolor="#fdf3d8"`
		}
		fmt.Fprintf(b, "%s%s [%s];\n", indent(level), dotQuote(t.UniqueName), attrs)
	}, func(t *Transform, level int) {
		clusters++
		fmt.Fprintf(b, "%ssubgraph cluster_%d {\n", indent(level), clusters)
		fmt.Fprintf(b, "%s  label=%s; tooltip=%s; style=\"rounded,dashed\"; color=\"#888888\";\n", indent(level), dotQuote(v.g.ShortName(t)), dotQuote(t.UniqueName))
	}, func(_ *Transform, level int) {
		fmt.Fprintf(b, "%s}\n", indent(level))
	})
	for _, e := range v.edges() {
		style := ""
		if e.side {
			style = ", style=dashed"
		}
		fmt.Fprintf(b, "  %s -> %s [label=%s, tooltip=%s%s];\n", dotQuote(e.from.UniqueName), dotQuote(e.to.UniqueName),
			dotQuote(wrapLabel(truncate(e.pc.Coder, maxWrapped))), dotQuote(e.pc.Name+": "+e.pc.Coder), style)
	}
	fmt.Fprintln(b, "}")
	return b.Flush()
}

// mermaidText escapes s for a quoted Mermaid label: quotes and angle
// brackets as the entity codes Mermaid reads.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", "<br/>")
	return r.Replace(s)
}

// renderMermaid writes g as a Mermaid flowchart: Mermaid ids must be plain
// words, so each transform is t and its index in g.Transforms.
func renderMermaid(w io.Writer, g *Graph, depth int) error {
	v := newView(g, depth)
	ids := make(map[*Transform]string, len(g.Transforms))
	for i, t := range g.Transforms {
		ids[t] = fmt.Sprintf("t%d", i)
	}
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "flowchart TD")
	indent := func(level int) string { return strings.Repeat("  ", level) }
	v.draw(func(t *Transform, level int) {
		name, kind := v.nodeLabel(t)
		fmt.Fprintf(b, "%s%s[\"%s<br/><small>%s</small>\"]\n", indent(level), ids[t], mermaidText(name), mermaidText(kind))
	}, func(t *Transform, level int) {
		fmt.Fprintf(b, "%ssubgraph %s[\"%s\"]\n", indent(level), ids[t], mermaidText(v.g.ShortName(t)))
	}, func(_ *Transform, level int) {
		fmt.Fprintf(b, "%send\n", indent(level))
	})
	for _, e := range v.edges() {
		arrow := "-->"
		if e.side {
			arrow = "-.->"
		}
		fmt.Fprintf(b, "  %s %s|\"%s\"| %s\n", ids[e.from], arrow, mermaidText(Label(e.pc.Coder)), ids[e.to])
	}
	return b.Flush()
}

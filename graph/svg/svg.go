// Package svg draws a DOT graph as SVG with Graphviz's own layout, compiled
// to WebAssembly and run in process: no Graphviz need be installed.
//
// Only cmd/beamctl-svg may import it. The library it wraps compiles its
// WebAssembly module in a package init, in every program that links it,
// and caches the result in the temporary directory: linked into beamctl,
// every command would pay for it at start.
package svg

import (
	"context"
	"fmt"
	"io"

	"github.com/goccy/go-graphviz"
)

// Render writes the SVG of the DOT graph dot to w.
func Render(ctx context.Context, w io.Writer, dot []byte) error {
	gv, err := graphviz.New(ctx)
	if err != nil {
		return fmt.Errorf("starting Graphviz: %w", err)
	}
	defer gv.Close()
	g, err := graphviz.ParseBytes(dot)
	if err != nil {
		return fmt.Errorf("reading the DOT graph: %w", err)
	}
	defer g.Close()
	if err := gv.Render(ctx, g, graphviz.SVG, w); err != nil {
		return fmt.Errorf("drawing the graph: %w", err)
	}
	return nil
}

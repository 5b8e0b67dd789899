// Command beamctl-svg draws the DOT graph on its standard input as SVG on
// its standard output, for beamctl graph --format svg. It is a program of
// its own because the renderer it links costs every program that links
// it time and memory at start; beamctl runs it only to draw.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/beamctl/beamctl/graph/svg"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "beamctl-svg takes no arguments: it draws the DOT graph on stdin as SVG on stdout")
		os.Exit(2)
	}
	dot, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "beamctl-svg: reading stdin:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	if err := svg.Render(context.Background(), out, dot); err != nil {
		fmt.Fprintln(os.Stderr, "beamctl-svg:", err)
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "beamctl-svg: writing stdout:", err)
		os.Exit(1)
	}
}

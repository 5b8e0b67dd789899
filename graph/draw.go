package graph

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/beamctl/beamctl/internal/problem"
)

// SVGProgram draws SVG for Render: cmd/beamctl-svg, which reads DOT on
// its standard input and writes SVG. Its renderer costs whatever program
// links it time and memory at start, so it is a program of its own.
const SVGProgram = "beamctl-svg"

// FindSVG finds SVGProgram beside the running program, where a release of
// beamctl ships it, else on PATH.
func FindSVG() (string, error) {
	name := SVGProgram
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(SVGProgram); err == nil {
		return p, nil
	}
	return "", problem.Usagef("install it beside beamctl or on PATH (go install github.com/beamctl/beamctl/cmd/beamctl-svg), or draw {Format} dot with Graphviz",
		"%s, which draws the graph as SVG, is not installed", SVGProgram).About("Format")
}

// DrawWith draws SVG with the SVGProgram at path, for RenderOptions.DrawSVG.
// cache, if set, becomes the program's temporary directory, where its
// renderer keeps its compiled code from one run to the next (megabytes,
// which then stay out of the user's temporary directory).
func DrawWith(ctx context.Context, path, cache string) func(w io.Writer, dot []byte) error {
	return func(w io.Writer, dot []byte) error {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, path)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(dot), w, &stderr
		if cache != "" {
			if err := os.MkdirAll(cache, 0o755); err != nil {
				return fmt.Errorf("drawing the graph: %w", err)
			}
			cmd.Env = append(os.Environ(), "TMPDIR="+cache)
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("drawing the graph with %s: %w: %s", path, err, problem.FirstLine(stderr.String()))
		}
		return nil
	}
}

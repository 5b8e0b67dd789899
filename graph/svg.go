package graph

import (
	"errors"
	"io"
)

func renderSVG(w io.Writer, g *Graph, depth int) error {
	return errors.New("svg is not supported yet")
}

package watch

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/beamctl/beamctl/build"
)

// headers remember, for each Go file watched, what in it decides which
// files the build reads: its package clause, imports, build constraints
// and embed patterns. A save that changes none of these in any file, and
// adds or removes no file, leaves the sources as they were, so they need
// not be listed again (a go list that would take a CPU from the next
// build when saves come quickly).
type headers struct {
	src  *build.Sources
	seen map[string]string
}

func newHeaders(src *build.Sources) *headers {
	h := &headers{src: src, seen: map[string]string{}}
	for _, f := range src.Files {
		if strings.HasSuffix(f, ".go") {
			if s, ok := header(f); ok {
				h.seen[f] = s
			}
		}
	}
	return h
}

// changed reports whether the change of files may have changed the
// sources, and remembers the new headers of those that did not.
func (h *headers) changed(files []string) bool {
	if len(files) == 0 {
		// A rerun asked for: the user may have changed what no event
		// told of.
		return true
	}
	next := map[string]string{}
	for _, f := range files {
		if !h.src.Has(f) {
			return true
		}
		switch filepath.Base(f) {
		case "go.mod", "go.sum", "go.work", "go.work.sum":
			return true
		}
		if _, err := os.Stat(f); err != nil {
			return true
		}
		if !strings.HasSuffix(f, ".go") {
			// An embedded file, or C or assembly: its content is built,
			// and the set of files stays.
			continue
		}
		s, ok := header(f)
		if old, known := h.seen[f]; !ok || !known || s != old {
			return true
		}
		next[f] = s
	}
	for f, s := range next {
		h.seen[f] = s
	}
	return false
}

// header is what in the Go file at path decides which files a build
// reads; ok is false for a file that does not parse as far as its
// imports, whose effect only go list can tell.
func header(path string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, data, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	b.WriteString(f.Name.Name)
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		b.WriteString("\x00" + p)
	}
	// Build constraints come before the package clause; embed patterns
	// may be anywhere; cgo's directives sit in the comment before
	// import "C", which the imports above already count.
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("//go:build")) || bytes.HasPrefix(line, []byte("// +build")) || bytes.HasPrefix(line, []byte("//go:embed")) {
			b.WriteString("\x00")
			b.Write(line)
		}
	}
	return b.String(), true
}

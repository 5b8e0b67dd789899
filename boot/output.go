package boot

import (
	"bytes"
	"io"
	"sync"

	"github.com/beamctl/beamctl/internal/lines"
)

// maxLine bounds a line held back while waiting for its end, so a worker
// writing without newlines cannot grow memory without limit.
const maxLine = 64 << 10

// lineWriter copies a worker's output to a shared writer one whole line at a
// time, each prefixed with the worker's name, and keeps its last lines for
// failure messages.
type lineWriter struct {
	prefix []byte
	out    io.Writer
	outMu  *sync.Mutex // shared by every worker writing to out

	mu    sync.Mutex
	lines lines.Splitter
	tail  lines.Tail
}

func newLineWriter(name string, out io.Writer, outMu *sync.Mutex, keep int) *lineWriter {
	w := &lineWriter{prefix: []byte("[" + name + "] "), out: out, outMu: outMu, tail: lines.Tail{Keep: keep}}
	w.lines = lines.Splitter{Line: w.emit, Max: maxLine}
	return w
}

// Write never fails, so a broken output never stops a worker.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines.Write(p)
}

// Flush writes a last line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines.Flush()
}

func (w *lineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	w.tail.Add(string(line))
	buf := make([]byte, 0, len(w.prefix)+len(line)+1)
	buf = append(append(append(buf, w.prefix...), line...), '\n')
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_, _ = w.out.Write(buf)
}

// Tail returns the last lines written, oldest first.
func (w *lineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tail.Lines()
}

// Package lines cuts a stream of writes into whole lines.
package lines

import "bytes"

// Splitter passes each whole line written to it, without its newline, to
// Line. It is not safe for concurrent use: its owners write to it under
// locks of their own, which also cover what Line does.
type Splitter struct {
	// Line receives each line; the slice is valid only during the call.
	Line func(line []byte)
	// Max, when positive, is the longest line passed on: a longer one is
	// passed on in pieces of Max bytes, so a writer that never ends a line
	// cannot grow memory without limit, and a reader never gets more.
	Max int

	partial []byte
}

// Write never fails.
func (s *Splitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			break
		}
		if len(s.partial) == 0 && (s.Max <= 0 || i <= s.Max) {
			// A whole line in one write: no copy.
			s.Line(p[:i])
		} else {
			s.add(p[:i])
			s.Line(s.partial)
			s.partial = s.partial[:0]
		}
		p = p[i+1:]
	}
	return n, nil
}

// add holds b as part of the current line, passing on a piece of Max
// bytes whenever the line grows past Max.
func (s *Splitter) add(b []byte) {
	for s.Max > 0 && len(s.partial)+len(b) > s.Max {
		k := s.Max - len(s.partial)
		s.partial = append(s.partial, b[:k]...)
		s.Line(s.partial)
		s.partial = s.partial[:0]
		b = b[k:]
	}
	s.partial = append(s.partial, b...)
}

// Flush passes on a line held back for want of its newline.
func (s *Splitter) Flush() {
	if len(s.partial) > 0 {
		s.Line(s.partial)
		s.partial = s.partial[:0]
	}
}

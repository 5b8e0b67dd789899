// Package lines cuts a stream of writes into whole lines.
package lines

import "bytes"

// Splitter passes each whole line written to it, without its newline, to
// Line. It is not safe for concurrent use: its owners write to it under
// locks of their own, which also cover what Line does.
type Splitter struct {
	// Line receives each line; the slice is valid only during the call.
	Line func(line []byte)
	// Max, when positive, passes on a line that grows this long without a
	// newline, so a writer that never ends one cannot grow memory without
	// limit.
	Max int

	partial []byte
}

// Write never fails.
func (s *Splitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			if s.Max > 0 && len(s.partial) >= s.Max {
				s.Flush()
			}
			break
		}
		if len(s.partial) > 0 {
			s.partial = append(s.partial, p[:i]...)
			s.Flush()
		} else {
			s.Line(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

// Flush passes on a line held back for want of its newline.
func (s *Splitter) Flush() {
	if len(s.partial) > 0 {
		s.Line(s.partial)
		s.partial = s.partial[:0]
	}
}

package lines

// Tail keeps the last lines it is given, for an error that quotes what a
// program said before it failed. Like Splitter, it leaves locking to its
// owner.
type Tail struct {
	// Keep is how many lines to keep; 0 keeps none.
	Keep int

	lines []string
	next  int // where the next line goes once lines is full
}

// Add keeps line, dropping the oldest kept line when Keep are kept.
func (t *Tail) Add(line string) {
	switch {
	case t.Keep <= 0:
	case len(t.lines) < t.Keep:
		t.lines = append(t.lines, line)
	default:
		t.lines[t.next] = line
		t.next = (t.next + 1) % t.Keep
	}
}

// Lines returns the kept lines, oldest first.
func (t *Tail) Lines() []string {
	out := make([]string, 0, len(t.lines))
	out = append(out, t.lines[t.next:]...)
	return append(out, t.lines[:t.next]...)
}

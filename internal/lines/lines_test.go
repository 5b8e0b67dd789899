package lines

import (
	"slices"
	"testing"
)

func TestSplitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		want   []string
	}{
		{name: "whole lines", writes: []string{"a\nb\n"}, want: []string{"a", "b"}},
		{name: "lines across writes", writes: []string{"he", "llo\nwor", "ld\n"}, want: []string{"hello", "world"}},
		{name: "empty lines", writes: []string{"\n\nx\n"}, want: []string{"", "", "x"}},
		{name: "last line without newline", writes: []string{"a\nb"}, want: []string{"a", "b"}},
		{name: "long line cut at max", max: 4, writes: []string{"abcdefghij\n"}, want: []string{"abcd", "efgh", "ij"}},
		{name: "line of max", max: 4, writes: []string{"abcd\nef\n"}, want: []string{"abcd", "ef"}},
		{name: "long line across writes cut at max", max: 4, writes: []string{"ab", "cdef", "g\nh"}, want: []string{"abcd", "efg", "h"}},
		{name: "long line without newline cut at max", max: 4, writes: []string{"ab", "cdef", "g"}, want: []string{"abcd", "efg"}},
		{name: "held line of max ends", max: 4, writes: []string{"abcd", "\n"}, want: []string{"abcd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			s := &Splitter{Max: tc.max, Line: func(l []byte) { got = append(got, string(l)) }}
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s.Flush()
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep int
		add  []string
		want []string
	}{
		{name: "fewer than kept", keep: 3, add: []string{"a", "b"}, want: []string{"a", "b"}},
		{name: "as many as kept", keep: 2, add: []string{"a", "b"}, want: []string{"a", "b"}},
		{name: "more than kept", keep: 2, add: []string{"a", "b", "c", "d", "e"}, want: []string{"d", "e"}},
		{name: "none kept", keep: 0, add: []string{"a"}, want: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tail := Tail{Keep: tc.keep}
			for _, l := range tc.add {
				tail.Add(l)
			}
			if got := tail.Lines(); !slices.Equal(got, tc.want) {
				t.Errorf("Lines = %q, want %q", got, tc.want)
			}
		})
	}
}

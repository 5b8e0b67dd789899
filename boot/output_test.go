package boot

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine)
	tests := []struct {
		name     string
		writes   []string
		keep     int
		wantOut  string
		wantTail []string
	}{
		{name: "whole lines", writes: []string{"a\nb\n"}, keep: 5,
			wantOut: "[w] a\n[w] b\n", wantTail: []string{"a", "b"}},
		{name: "split across writes", writes: []string{"he", "llo\nwor", "ld\n"}, keep: 5,
			wantOut: "[w] hello\n[w] world\n", wantTail: []string{"hello", "world"}},
		{name: "unterminated last line flushed", writes: []string{"a\nb"}, keep: 5,
			wantOut: "[w] a\n[w] b\n", wantTail: []string{"a", "b"}},
		{name: "crlf", writes: []string{"a\r\n"}, keep: 5,
			wantOut: "[w] a\n", wantTail: []string{"a"}},
		{name: "tail keeps the last lines", writes: []string{"1\n2\n3\n4\n5\n"}, keep: 3,
			wantOut: "[w] 1\n[w] 2\n[w] 3\n[w] 4\n[w] 5\n", wantTail: []string{"3", "4", "5"}},
		{name: "empty lines kept", writes: []string{"\n\n"}, keep: 3,
			wantOut: "[w] \n[w] \n", wantTail: []string{"", ""}},
		{name: "overlong line cut", writes: []string{long, "y\n"}, keep: 3,
			wantOut: "[w] " + long + "\n[w] y\n", wantTail: []string{long, "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			var mu sync.Mutex
			w := newLineWriter("w", &out, &mu, tt.keep)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.Flush()
			if out.String() != tt.wantOut {
				t.Errorf("output %q, want %q", out.String(), tt.wantOut)
			}
			if got := w.Tail(); !slices.Equal(got, tt.wantTail) {
				t.Errorf("tail %q, want %q", got, tt.wantTail)
			}
		})
	}
}

func TestWorkerErrorMessage(t *testing.T) {
	e := &WorkerError{Worker: "worker-2", ID: "job[x]_go", Err: errString("exited before the job stopped it: exit status 1"),
		Output: []string{"first", "panic: boom", "  "}}
	want := `worker worker-2 (job[x]_go): exited before the job stopped it: exit status 1; last output: "panic: boom"`
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

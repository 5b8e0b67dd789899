package suggest

import (
	"slices"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"target", "trget", 1},
		{"linux/sparc", "linux/arm", 3},
		{"", "abc", 3},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNearest(t *testing.T) {
	got := Nearest("jbos", []string{"out", "jobs", "debug", "job"}, 2, nil)
	if want := []string{"job", "jobs"}; !slices.Equal(got, want) {
		t.Errorf("Nearest = %v, want %v", got, want)
	}
}

func TestClose(t *testing.T) {
	names := []string{"build", "jobs", "logs", "list"}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"buidl", "build", true},
		{"lgs", "logs", true},
		{"frobnicate", "", false},
	} {
		if got, ok := Close(tc.in, names, 2); got != tc.want || ok != tc.ok {
			t.Errorf("Close(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

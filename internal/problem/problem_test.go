package problem

import (
	"errors"
	"fmt"
	"testing"
)

func TestRender(t *testing.T) {
	flag := func(s string) string { return "--" + s }
	jobs := Usagef("give a positive number", "{Jobs} %d is negative", -3).About("Jobs")
	dir := Failf("give a writable directory with {CacheDir}", "creating %s", "/x")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"problem", jobs, "--Jobs -3 is negative: give a positive number"},
		{"wrapped", fmt.Errorf("building linux/arm64: %w", jobs), "building linux/arm64: --Jobs -3 is negative: give a positive number"},
		{"wrapped twice", fmt.Errorf("run: %w", fmt.Errorf("build: %w", dir)), "run: build: creating /x: give a writable directory with --CacheDir"},
		{"joined", errors.Join(jobs, dir), "--Jobs -3 is negative: give a positive number\ncreating /x: give a writable directory with --CacheDir"},
		// A wrapper that does not end with its cause's words cannot be
		// split into its own and its cause's: it reads as it is.
		{"cause inside", fmt.Errorf("x (%w) y", jobs), "x (Jobs -3 is negative: give a positive number) y"},
		{"two causes", fmt.Errorf("%w and %w", jobs, dir), jobs.Error() + " and " + dir.Error()},
		{"plain", errors.New("{NotASetting} stays"), "{NotASetting} stays"},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Render(tt.err, flag); got != tt.want {
				t.Errorf("Render = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	jobs := Usagef("fix", "{Jobs} is bad").About("Jobs")
	tests := []struct {
		name string
		err  error
		key  string
		ok   bool
	}{
		{"about a setting", jobs, "Jobs", true},
		{"wrapped", fmt.Errorf("build: %w", jobs), "Jobs", true},
		{"no setting", Usagef("fix", "bad"), "", false},
		{"outer without, inner with", Usagef("fix", "bad").Wrap(jobs), "Jobs", true},
		{"plain", errors.New("x"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, ok := KeyOf(tt.err)
			if key != tt.key || ok != tt.ok {
				t.Errorf("KeyOf = %q, %v; want %q, %v", key, ok, tt.key, tt.ok)
			}
		})
	}
}

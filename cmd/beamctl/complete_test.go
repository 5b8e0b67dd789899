package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// complete runs cobra's hidden completion command, as a shell does, and
// returns the candidates (descriptions dropped).
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	r := beamctl(t, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %q: exit %d\n%s", args, r.code, r.stderr)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.HasPrefix(l, ":") {
			break
		}
		c, _, _ := strings.Cut(l, "\t")
		out = append(out, c)
	}
	return out
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"run", "--target", "linux/a"}, []string{"linux/amd64", "linux/arm64", "linux/amd64/v3"}, []string{"windows/amd64", "linux/arm64/v8", "linux/arm", "linux/arm/v7"}},
		{[]string{"run", "--target", "linux/"}, []string{"linux/ppc64le", "linux/s390x", "linux/riscv64"}, []string{"linux/386", "linux/mips"}},
		{[]string{"run", "--target", "freebsd/ar"}, []string{"freebsd/arm64", "freebsd/arm/v7"}, nil},
		{[]string{"run", "--target", "js"}, nil, []string{"js/wasm"}},
		{[]string{"build", "--target", "linux/amd64,linux/arm6"}, []string{"linux/amd64,linux/arm64"}, []string{"linux/arm64"}},
		{[]string{"stage", "--target", "ho"}, []string{"host"}, nil},
		{[]string{"submit", "dist", "--environment", ""}, []string{"docker", "process", "external", "loopback"}, nil},
		{[]string{"submit", "dist", "--environment", "ex"}, []string{"external"}, []string{"docker"}},
		{[]string{"version", "--output", ""}, []string{"text", "json"}, nil},
		{[]string{"graph", ".", "--format", ""}, []string{"text", "json", "dot", "mermaid", "svg"}, nil},
		{[]string{"graph", ".", "--format", "m"}, []string{"mermaid"}, []string{"dot"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := complete(t, tt.args...)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing %q in %q", w, got)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(got, n) {
					t.Errorf("unexpected %q in %q", n, got)
				}
			}
		})
	}
}

// TestCompleteJobIDs completes job ids from the upstream prism process,
// and completes nothing, quietly, from an endpoint where nothing answers.
func TestCompleteJobIDs(t *testing.T) {
	t.Parallel()
	prism := startPrism(t)
	out := filepath.Join(t.TempDir(), "counts.txt")
	// The process command is named: in process, beamctl's own path is this
	// test binary, which prism would start in vain.
	r := beamctl(t, "submit", builtDist(t), "--endpoint", prism.Endpoint, "--environment", "process",
		"--environment-config", beamctlBinary(t), "--detach",
		"--", "--input="+abs(t, wordcountInput), "--output="+out)
	if r.code != 0 {
		t.Fatalf("submit: exit %d\n%s", r.code, r.stderr)
	}
	job := strings.TrimSpace(r.stdout)
	defer beamctl(t, "jobs", "cancel", job, "--endpoint", prism.Endpoint)
	for _, verb := range []string{"status", "cancel", "logs", "metrics"} {
		if got := complete(t, "jobs", verb, "--endpoint", prism.Endpoint, ""); !slices.Contains(got, job) {
			t.Errorf("jobs %s completes %q, want %s among them", verb, got, job)
		}
	}
	if got := complete(t, "jobs", "status", "--endpoint", prism.Endpoint, "zzz"); len(got) != 0 {
		t.Errorf("a prefix no job has completes %q", got)
	}
	r = beamctl(t, "__complete", "jobs", "status", "--endpoint", "127.0.0.1:1", "")
	if r.code != 0 || strings.Contains(r.stderr, "beamctl:") {
		t.Errorf("an unreachable endpoint: exit %d, stderr %q", r.code, r.stderr)
	}
}

package main

import (
	"strings"
	"testing"
)

// TestUsageErrors gives commands the wrong arguments: each is a usage
// error (exit 2) of one line that says what to type instead.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"buidl"}, `unknown command "buidl" for beamctl: did you mean beamctl build?`},
		{[]string{"jobs", "stat"}, "did you mean beamctl jobs status?"},
		{[]string{"jobs", "lgs"}, "did you mean beamctl jobs logs?"},
		{[]string{"build", "--taget", "linux/arm64"}, "unknown flag: --taget: did you mean --target?"},
		{[]string{"submit", "dist", "--inptu=x"}, "pipeline arguments go after --, e.g. beamctl submit dist -- --inptu=…"},
		{[]string{"jobs", "frobnicate"}, `unknown command "frobnicate" for beamctl jobs: see beamctl jobs --help`},
		{[]string{"jobs", "status"}, "accepts 1 arg(s), received 0: usage is beamctl jobs status JOB"},
		{[]string{"jobs", "cancel", "a", "b"}, "usage is beamctl jobs cancel JOB"},
		{[]string{"build", "a", "b"}, "usage is beamctl build [PKG]"},
		{[]string{"config", "view", "a", "b"}, "usage is beamctl config view [DIR]"},
		{[]string{"version", "x"}, "usage is beamctl version"},
		{[]string{"run", "a", "b"}, "put pipeline arguments after --"},
		{[]string{"run", "../../examples/wordcount", "--input=in.txt"}, "unknown flag: --input: pipeline arguments go after --"},
		{[]string{"submit", "dist", "-x"}, "pipeline arguments go after --"},
		{[]string{"run", "../../examples/wordcount", "--output=counts.txt"}, `--output "counts.txt" is not a format: use text or json (a pipeline's own --output goes after --)`},
		{[]string{"build", "--bogus"}, "unknown flag: --bogus: see --help"},
		{[]string{"run", "../../examples/wordcount", "--", "--runner=direct"}, "the pipeline argument --runner=direct is beamctl's to set: remove it"},
		{[]string{"run", "../../examples/wordcount", "--", "--output=x", "--worker_binary", "w"}, "the worker it built for --target"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := beamctl(t, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one line with %q", r.code, r.stdout, r.stderr, exitUsage, tt.want)
			}
		})
	}
	// A command of commands alone shows its help.
	if r := beamctl(t, "jobs"); r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("beamctl jobs: exit %d, stdout %q", r.code, r.stdout)
	}
}

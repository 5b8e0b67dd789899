package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile reads beamctl.yaml files nobody checked, with and without
// a profile, through config view as a user would: each is shown (exit 0)
// or refused (exit 2) in one line naming the file, never with a panic or
// a stack trace.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"out: dist\njobs: 2\nprofiles:\n  prod:\n    endpoint: flink:8099\n    jobs: 5\n",
		"target: [linux/amd64, linux/arm64]\nvet: off\n",
		"jobs: lots\n",
		"profiles: [a, b]\n",
		"profiles:\n  prod: 3\n",
		"endpoint: {a: b}\n",
		"timeout: -1s\n",
		"no_such_setting: 1\n",
		": : :\n\t- x",
		"",
	} {
		f.Add(s, "prod")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, yaml, profile string) {
		file := filepath.Join(t.TempDir(), "beamctl.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"config", "view", "--config", file}
		if profile != "" {
			args = append(args, "--profile", profile)
		}
		r := beamctl(t, args...)
		switch r.code {
		case 0:
		case 2:
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines > 1 {
				t.Fatalf("refusal of %q takes %d lines:\n%s", yaml, lines, r.stderr)
			}
		default:
			t.Fatalf("config view of %q: exit %d\n%s", yaml, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
			t.Fatalf("config view of %q: stack trace\n%s", yaml, r.stderr)
		}
	})
}

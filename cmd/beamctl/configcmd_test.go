package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestConfigView checks where config view says each value comes from, for
// every level of precedence, and the profile rules.
func TestConfigView(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ConfigFile)
	yaml := `out: from-file
jobs: 2
profiles:
  prod:
    endpoint: flink:8099
    jobs: 5
  dev:
    endpoint: localhost:8099
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	view := func(t *testing.T, env map[string]string, args ...string) map[string]configRow {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		r := beamctl(t, append([]string{"config", "view", dir, "--output", "json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		var out struct {
			Profile  string
			Files    []string
			Settings []configRow
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if !slices.Contains(out.Files, file) {
			t.Errorf("files %q lack %s", out.Files, file)
		}
		rows := map[string]configRow{}
		for _, s := range out.Settings {
			rows[s.Key] = s
		}
		return rows
	}
	type want struct{ key, value, source string }
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want []want
	}{
		{"file and defaults", nil, nil, []want{
			{"out", "from-file", file + ":1"},
			{"jobs", "2", file + ":2"},
			{"endpoint", "", "default"},
			{"strip", "true", "default"},
			{"debug-addr", "127.0.0.1:2345", "default"},
			{"debug-wait", "true", "default"},
		}},
		{"profile over file", nil, []string{"--profile", "prod"}, []want{
			{"jobs", "5", file + ":6 (profile prod)"},
			{"endpoint", "flink:8099", file + ":5 (profile prod)"},
			{"out", "from-file", file + ":1"},
		}},
		{"profile from the environment", map[string]string{"BEAMCTL_PROFILE": "dev"}, nil, []want{
			{"endpoint", "localhost:8099", file + ":8 (profile dev)"},
		}},
		{"environment over profile", map[string]string{"BEAMCTL_JOBS": "7"}, []string{"--profile", "prod"}, []want{
			{"jobs", "7", "env BEAMCTL_JOBS"},
		}},
		{"flag over all", map[string]string{"BEAMCTL_JOBS": "7"}, []string{"--profile", "prod", "--jobs", "9"}, []want{
			{"jobs", "9", "flag --jobs"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows := view(t, tt.env, tt.args...)
			for key := range allSettings() {
				if r, ok := rows[key]; !ok || r.Value == nil {
					t.Errorf("setting %s: %+v, want a value (its default at least)", key, r)
				}
			}
			for _, w := range tt.want {
				r := rows[w.key]
				if valueText(r.Value) != w.value || r.Source != w.source {
					t.Errorf("%s = %v from %q, want %q from %q", w.key, r.Value, r.Source, w.value, w.source)
				}
			}
		})
	}
	t.Run("unknown profile", func(t *testing.T) {
		r := beamctl(t, "config", "view", dir, "--profile", "staging")
		if r.code != exitUsage || !strings.Contains(r.stderr, `profile "staging" is not defined: choose one of dev, prod`) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("profile completion", func(t *testing.T) {
		t.Chdir(dir)
		if got := complete(t, "config", "view", "--profile", "p"); !slices.Equal(got, []string{"prod"}) {
			t.Errorf("completes %q, want prod", got)
		}
	})
	t.Run("a profile reaches commands", func(t *testing.T) {
		// Nothing listens there: the error names the profile's endpoint.
		r := beamctl(t, "jobs", "list", "--config", file, "--profile", "dev", "--connect-timeout", "1s")
		if r.code == 0 || !strings.Contains(r.stderr, "localhost:8099") {
			t.Errorf("exit %d, stderr %q; want the profile's endpoint named", r.code, r.stderr)
		}
	})
}

// TestConfigByImportPath reads the beamctl.yaml of a package named by its
// import path, as for one named by its directory.
func TestConfigByImportPath(t *testing.T) {
	mod := t.TempDir()
	pkg := filepath.Join(mod, "pipe")
	for name, content := range map[string]string{
		filepath.Join(mod, "go.mod"):       "module example.com/cfg\n\ngo 1.26\n",
		filepath.Join(pkg, "main.go"):      "package main\n\nfunc main() {}\n",
		filepath.Join(pkg, "beamctl.yaml"): "jobs: 3\n",
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(mod)
	r := beamctl(t, "config", "view", "example.com/cfg/pipe")
	if r.code != 0 || !strings.Contains(r.stdout, filepath.Join(pkg, "beamctl.yaml")+":1") {
		t.Errorf("exit %d, stdout %q; want jobs from %s", r.code, r.stdout, filepath.Join(pkg, "beamctl.yaml"))
	}
}

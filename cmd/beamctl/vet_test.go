package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/vet"
)

// TestVetCommand runs beamctl vet as a process on each check's pipeline
// with the mistake and on the corrected one.
func TestVetCommand(t *testing.T) {
	t.Parallel()
	bin := beamctlBinary(t)
	for _, name := range []string{"unexportedfield", "flagread", "unregistered", "anonymousfn", "dofnmethod"} {
		for _, kind := range []string{"bad", "good"} {
			t.Run(kind+"/"+name, func(t *testing.T) {
				t.Parallel()
				pkg := "../../vet/testdata/" + kind + "/" + name
				cmd := exec.Command(bin, "vet", pkg, "--output", "json")
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				var findings []vet.Finding
				if err := json.Unmarshal(stdout.Bytes(), &findings); err != nil {
					t.Fatalf("stdout is not a JSON list of findings: %v\n%s\n%s", err, stdout.String(), stderr.String())
				}
				if kind == "good" {
					if code != 0 || len(findings) != 0 {
						t.Errorf("exit %d, findings %v; want 0 and none\n%s", code, findings, stderr.String())
					}
					return
				}
				if code != 1 || len(findings) == 0 {
					t.Fatalf("exit %d, %d findings; want 1 and some\n%s", code, len(findings), stderr.String())
				}
				for _, f := range findings {
					if f.Analyzer != name && !(name == "unregistered" && f.Analyzer == "anonymousfn") {
						t.Errorf("finding of %s in the pipeline for %s: %s", f.Analyzer, name, f)
					}
					if !strings.HasPrefix(f.Position, filepath.Clean(pkg)+"/main.go:") || f.Message == "" || f.Fix == "" {
						t.Errorf("finding %+v lacks a position in %s, a message or a fix", f, pkg)
					}
				}
			})
		}
	}
}

// TestVetText checks the text form: one finding a line on stderr, with
// its fix below, and go vet's exit status.
func TestVetText(t *testing.T) {
	t.Parallel()
	r := beamctl(t, "vet", "../../vet/testdata/bad/flagread")
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing\n%s", r.code, r.stdout, r.stderr)
	}
	checkText(t, "stderr", r.stderr, []string{
		"../../vet/testdata/bad/flagread/main.go:35:10: DoFn addPrefixFn.ProcessElement reads prefix, which flag parsing sets only in the launcher: workers see its default (flagread)\n\tfix: carry the value in an exported field",
	}, []string{"beamctl:"}, 0)
	if r := beamctl(t, "vet", "./testdata/notmain", "../../examples/wordcount"); r.code != 0 || r.stderr != "" {
		t.Errorf("clean packages: exit %d\n%s", r.code, r.stderr)
	}
	if r := beamctl(t, "vet", "./testdata/no-such-dir"); r.code != 2 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("a missing package: exit %d, want 2 and one line\n%s", r.code, r.stderr)
	}
	if r := beamctl(t, "vet", "./testdata/broken"); r.code != 1 || !strings.Contains(r.stderr, "broken/main.go:") {
		t.Errorf("a package that does not compile: exit %d, want 1 and the compiler's message\n%s", r.code, r.stderr)
	}
}

// TestRunRefusedByVet checks that run, build and stage refuse a pipeline with a
// mistake before anything runs or is written, and that --vet=off, from
// the flag, the environment or beamctl.yaml, lets it through.
func TestRunRefusedByVet(t *testing.T) {
	t.Parallel()
	pkg := "../../vet/testdata/bad/unexportedfield"
	out := filepath.Join(t.TempDir(), "out.txt")
	r := beamctl(t, "run", pkg, "--target", "host", "--", "--output="+out)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	checkText(t, "stderr", r.stderr, []string{"beamctl: the pipeline has 3 mistakes", "field prefix is set here but not encoded", "fix: export the field (Prefix)", "--vet=off"},
		[]string{"submitted", "state "}, 2500)
	if m, _ := filepath.Glob(out + "*"); len(m) > 0 {
		t.Errorf("a refused run wrote %v", m)
	}

	dist := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", pkg, "--target", "host", "--out", dist); r.code != 1 || !strings.Contains(r.stderr, "unexportedfield") {
		t.Errorf("build: exit %d, want 1 with the findings\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(dist); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build wrote %s: %v", dist, err)
	}

	tarball := filepath.Join(t.TempDir(), "wc.tar")
	if r := beamctl(t, "stage", pkg, "--target", "host", "--image", "wc:v1", "--tarball", tarball); r.code != 1 || !strings.Contains(r.stderr, "unexportedfield") {
		t.Errorf("stage: exit %d, want 1 with the findings\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(tarball); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused stage wrote %s: %v", tarball, err)
	}

	if r := beamctl(t, "run", "--vet=off", pkg, "--target", "host", "--", "--output="+out); r.code != 0 {
		t.Fatalf("--vet=off: exit %d, want 0\n%s", r.code, r.stderr)
	}
	if m, _ := filepath.Glob(out + "*"); len(m) == 0 {
		t.Error("--vet=off ran no job that wrote its output")
	}

	t.Run("environment", func(t *testing.T) {
		if r := beamctlEnv(t, []string{"BEAMCTL_VET=off"}, "build", pkg, "--target", "host", "--out", filepath.Join(t.TempDir(), "d")); r.code != 0 {
			t.Errorf("BEAMCTL_VET=off: exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("config file", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "beamctl.yaml")
		if err := os.WriteFile(cfg, []byte("vet: off\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := beamctl(t, "build", "--config", cfg, pkg, "--target", "host", "--out", filepath.Join(t.TempDir(), "d")); r.code != 0 {
			t.Errorf("vet: off in beamctl.yaml: exit %d\n%s", r.code, r.stderr)
		}
	})
	if r := beamctl(t, "build", "--vet=maybe", pkg); r.code != 2 || !strings.Contains(r.stderr, "use on or off") {
		t.Errorf("--vet=maybe: exit %d, want 2\n%s", r.code, r.stderr)
	}
}

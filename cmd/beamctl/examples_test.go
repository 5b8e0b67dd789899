package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// beamctlLine finds beamctl command lines in the CI examples' scripts.
var beamctlLine = regexp.MustCompile(`(?m)\bbeamctl ((?:build|stage|submit|run|jobs|config|version)\b.*?)(?:$|\s[>|]|\))`)

// TestCIExamples parses the CI examples under docs/examples as YAML and
// every beamctl command in them with beamctl's own flags, so an example
// cannot name a flag that does not exist.
func TestCIExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../docs/examples/*.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("not YAML: %v", err)
			}
			// Shell line continuations join a command's lines.
			text := strings.ReplaceAll(string(data), "\\\n", " ")
			found := 0
			for _, m := range beamctlLine.FindAllStringSubmatch(text, -1) {
				args := shellWords(m[1])
				root := newRootCmd(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
				cmd, rest, err := root.Find(args)
				if err != nil || cmd == root {
					t.Errorf("beamctl %s: no such command (%v)", m[1], err)
					continue
				}
				if err := cmd.ParseFlags(rest); err != nil {
					t.Errorf("beamctl %s: %v", m[1], err)
				}
				found++
			}
			if found < 3 {
				t.Errorf("found %d beamctl commands, want build, stage and submit", found)
			}
		})
	}
}

// shellWords splits a command line into words, dropping quotes; what
// follows "--" (the pipeline's own arguments) is kept as it is.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

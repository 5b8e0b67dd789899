// Package gomod places package patterns in the modules they name: go
// loads packages of the module it runs in (and its workspace) only, so a
// directory in a module of its own is loaded from there.
package gomod

import (
	"os"
	"path/filepath"
	"strings"
)

// Group is patterns that load from one directory.
type Group struct {
	Dir      string
	Patterns []string
}

// ByModule sends a directory pattern that lies in another module than
// workDir's to that module's directory, rewritten relative to it; other
// patterns stay with workDir. Groups keep the order of their first
// pattern.
func ByModule(workDir string, patterns []string) []Group {
	home := Root(workDir)
	var out []Group
	add := func(dir, p string) {
		for i := range out {
			if out[i].Dir == dir {
				out[i].Patterns = append(out[i].Patterns, p)
				return
			}
		}
		out = append(out, Group{dir, []string{p}})
	}
	for _, p := range patterns {
		if !isDirPattern(p) {
			add(workDir, p)
			continue
		}
		base, rest, _ := strings.Cut(p, "/...")
		abs := base
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(workDir, base)
		}
		root := Root(abs)
		if root == "" || root == home {
			add(workDir, p)
			continue
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			add(workDir, p)
			continue
		}
		q := "./" + filepath.ToSlash(rel)
		if strings.Contains(p, "/...") {
			q += "/..." + rest
		}
		add(root, q)
	}
	return out
}

func isDirPattern(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || filepath.IsAbs(p)
}

// Root is the directory of the go.mod that holds dir, or "".
func Root(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

package vet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/gomod"
)

// A check's findings depend on the checked packages' own files (the
// analyzers report on what a package declares), on the module's
// requirements, on how go list was asked, and on the analyzers. The
// cache keeps, per check, the size and modification time of each of
// those files and of their directories (a new file changes its
// directory's), so that a check of unchanged files costs a few stats
// instead of a go list.
type stamp struct {
	Files  []fileStamp `json:"files"`
	Report *Report     `json:"report"`
}

type fileStamp struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`
}

func statStamp(path string) (fileStamp, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	s := fileStamp{Path: path, ModTime: fi.ModTime().UnixNano()}
	if !fi.IsDir() {
		s.Size = fi.Size()
	}
	return s, true
}

// cacheKey names a check: where and how it loads, with which analyzers.
func cacheKey(o Options, grp gomod.Group) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00%s\n", grp.Dir, grp.Patterns, o.BuildFlags, toolID())
	// Later entries win, as they do for go.
	env := map[string]string{}
	for _, kv := range o.Env {
		k, _, _ := strings.Cut(kv, "=")
		env[k] = kv
	}
	for _, kv := range slices.Sorted(maps.Values(env)) {
		if strings.HasPrefix(kv, "GO") || strings.HasPrefix(kv, "CGO_") || strings.HasPrefix(kv, "PATH=") {
			fmt.Fprintf(h, "%s\n", kv)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// toolID identifies the analyzers by the executable that holds them:
// another build of beamctl may check differently.
func toolID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	s, _ := statStamp(exe)
	return fmt.Sprintf("%s %d %d", exe, s.Size, s.ModTime)
}

func readCache(dir, key string) (*Report, bool) {
	if dir == "" {
		return nil, false
	}
	data, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil, false
	}
	var st stamp
	if json.Unmarshal(data, &st) != nil || st.Report == nil || len(st.Files) == 0 {
		return nil, false
	}
	for _, f := range st.Files {
		if now, ok := statStamp(f.Path); !ok || now != f {
			return nil, false
		}
	}
	st.Report.Cached = true
	return st.Report, true
}

func writeCache(dir, key string, pkgs []*packages.Package, rep *Report, log *slog.Logger) {
	if dir == "" {
		return
	}
	var paths []string
	for _, p := range pkgs {
		for _, list := range [][]string{p.GoFiles, p.OtherFiles, p.EmbedFiles, p.IgnoredFiles} {
			for _, f := range list {
				paths = append(paths, f, filepath.Dir(f))
			}
		}
		if p.Module != nil && p.Module.GoMod != "" {
			paths = append(paths, p.Module.GoMod, filepath.Join(filepath.Dir(p.Module.GoMod), "go.sum"))
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	st := stamp{Report: rep}
	for _, p := range paths {
		if s, ok := statStamp(p); ok {
			st.Files = append(st.Files, s)
		}
	}
	data, err := json.Marshal(st)
	if err == nil {
		if err = os.MkdirAll(dir, 0o755); err == nil {
			err = atomicfile.WriteFile(filepath.Join(dir, key+".json"), data, 0o644)
		}
	}
	if err != nil {
		log.Debug("keeping the vet findings failed", "error", err)
	}
}

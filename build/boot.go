package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/build/constraint"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/beamctl/beamctl"
)

// bootRoot is where beamctl-boot's source appears inside the pipeline's
// module. The go command leaves directories starting with "_" out of
// patterns such as ./..., and the files exist only in the overlay, so the
// user's own builds never see them.
const bootRoot = "_beamctl"

// bootOverlay is beamctl-boot's source laid into one module.
type bootOverlay struct {
	// file is the go build -overlay file.
	file string
	// importPath is beamctl-boot's main package as the module sees it.
	importPath string
}

// layBootSource writes beamctl-boot's embedded source, with its imports
// renamed into mod, under cacheDir and returns the overlay that places it
// in mod's directory. The boot is then built like the worker: by the
// pipeline's toolchain, against the pipeline's versions of gRPC and Beam's
// protos, for any target, offline. Written once per source and module.
func layBootSource(mod Module, cacheDir string) (*bootOverlay, error) {
	files, err := bootFiles()
	if err != nil {
		return nil, err
	}
	prefix := mod.Path + "/" + bootRoot
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", mod.Dir, prefix)
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
	}
	dir := filepath.Join(cacheDir, "boot-source", hex.EncodeToString(h.Sum(nil))[:24])
	o := &bootOverlay{file: filepath.Join(dir, "overlay.json"), importPath: prefix + "/" + beamctl.BootMain}
	if _, err := os.Stat(o.file); err == nil {
		return o, nil
	}

	goVersion, err := bootGoVersion()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dir), 0o755); err == nil {
			tmp, err = os.MkdirTemp(filepath.Dir(dir), ".tmp-")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("laying out beamctl-boot's source: %w", err)
	}
	defer os.RemoveAll(tmp)
	replace := map[string]string{}
	for _, f := range files {
		src, err := rewriteBootFile(f.name, f.data, prefix, goVersion)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(tmp, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, src, 0o644); err != nil {
			return nil, fmt.Errorf("laying out beamctl-boot's source: %w", err)
		}
		replace[filepath.Join(mod.Dir, bootRoot, filepath.FromSlash(f.name))] = filepath.Join(dir, filepath.FromSlash(f.name))
	}
	data, err := json.Marshal(struct{ Replace map[string]string }{replace})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "overlay.json"), data, 0o644); err != nil {
		return nil, fmt.Errorf("laying out beamctl-boot's source: %w", err)
	}
	// Another beamctl may have laid the same source meanwhile: its copy is
	// as good as this one.
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(o.file); serr != nil {
			return nil, fmt.Errorf("laying out beamctl-boot's source: %w", err)
		}
	}
	return o, nil
}

type sourceFile struct {
	name string
	data []byte
}

// bootFiles are the embedded Go files beamctl-boot is built from, tests
// left out.
func bootFiles() ([]sourceFile, error) {
	var out []sourceFile
	err := fs.WalkDir(beamctl.BootSource, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".go" || strings.HasSuffix(p, "_test.go") {
			return err
		}
		data, err := fs.ReadFile(beamctl.BootSource, p)
		if err != nil {
			return err
		}
		out = append(out, sourceFile{name: p, data: data})
		return nil
	})
	return out, err
}

// bootGoVersion is the language version beamctl's source is written in.
func bootGoVersion() (string, error) {
	data, err := fs.ReadFile(beamctl.BootSource, "go.mod")
	if err != nil {
		return "", err
	}
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil || f.Go == nil {
		return "", fmt.Errorf("reading beamctl's own go.mod: %v", err)
	}
	v := f.Go.Version
	if major, minor, ok := strings.Cut(v, "."); ok {
		minor, _, _ = strings.Cut(minor, ".")
		v = major + "." + minor
	}
	return "go" + v, nil
}

// rewriteBootFile renames beamctl's imports in one file into prefix, and
// gives the file beamctl's language version with a build constraint: the
// files join the pipeline's module, whose go directive may be older.
func rewriteBootFile(name string, src []byte, prefix, goVersion string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("reading beamctl-boot's source %s: %w", name, err)
	}
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(p, beamctl.Module+"/"); ok {
			imp.Path.Value = strconv.Quote(prefix + "/" + rest)
		}
	}
	expr := goVersion
	for _, g := range f.Comments {
		if g.Pos() >= f.Package {
			break
		}
		for _, c := range g.List {
			if constraint.IsGoBuild(c.Text) {
				x, err := constraint.Parse(c.Text)
				if err != nil {
					return nil, fmt.Errorf("reading beamctl-boot's source %s: %w", name, err)
				}
				expr = goVersion + " && (" + x.String() + ")"
				c.Text = "//go:build " + expr
			}
		}
	}
	var buf bytes.Buffer
	if expr == goVersion {
		fmt.Fprintf(&buf, "//go:build %s\n\n", goVersion)
	}
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, fmt.Errorf("writing beamctl-boot's source %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

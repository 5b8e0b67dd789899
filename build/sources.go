package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Sources are the files a build reads that the user may edit: a change to
// one of them changes what the build makes.
type Sources struct {
	// Files are the files, absolute and sorted.
	Files []string
	// Dirs are the directories of the packages among them, sorted: a Go
	// file added to one changes the build too.
	Dirs []string
}

// Has reports whether path is one of the Files.
func (s *Sources) Has(path string) bool {
	_, ok := slices.BinarySearch(s.Files, path)
	return ok
}

// HasDir reports whether dir is one of the Dirs.
func (s *Sources) HasDir(dir string) bool {
	_, ok := slices.BinarySearch(s.Dirs, dir)
	return ok
}

// Sources lists the files the build o describes depends on in the main
// modules (and the workspace's, and modules replaced by a directory): the
// Go, cgo, assembly and embedded files of every package of theirs it
// imports, for the launcher's platform and each target's, and the go.mod,
// go.sum and go.work that decide the module graph. The module cache's
// files are left out: they do not change. Broken source is listed as far
// as go can read it.
func (o Options) Sources(ctx context.Context) (*Sources, error) {
	if err := o.defaults(ctx); err != nil {
		return nil, err
	}
	pkg, err := ResolvePackage(ctx, o.Toolchain, o.WorkDir, o.Package)
	if err != nil {
		return nil, err
	}
	platforms := []Platform{HostPlatform()}
	for _, t := range o.Targets {
		if !slices.Contains(platforms, t) {
			platforms = append(platforms, t)
		}
	}
	lists := make([][]listedPackage, len(platforms))
	var work []byte
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range platforms {
		g.Go(func() error {
			args := []string{"list", "-deps", "-e", "-json=Dir,Module,GoFiles,CgoFiles,CFiles,CXXFiles,HFiles,SFiles,SysoFiles,EmbedFiles"}
			if o.Tags != "" {
				args = append(args, "-tags", o.Tags)
			}
			out, err := o.Toolchain.output(gctx, pkg.runDir, compileEnv(p), append(args, pkg.arg)...)
			if err != nil {
				return err
			}
			lists[i], err = decodePackages(out)
			return err
		})
	}
	g.Go(func() (err error) {
		work, err = o.Toolchain.output(gctx, pkg.runDir, nil, "env", "GOWORK")
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("listing the sources of %s: %w", o.Package, err)
	}
	files, dirs := map[string]bool{}, map[string]bool{}
	for _, list := range lists {
		for _, lp := range list {
			if !lp.editable() {
				continue
			}
			dirs[lp.Dir] = true
			for _, names := range [][]string{lp.GoFiles, lp.CgoFiles, lp.CFiles, lp.CXXFiles, lp.HFiles, lp.SFiles, lp.SysoFiles, lp.EmbedFiles} {
				for _, n := range names {
					files[filepath.Join(lp.Dir, n)] = true
				}
			}
			gomod := lp.Module.GoMod
			if lp.Module.Replace != nil {
				gomod = lp.Module.Replace.GoMod
			}
			if gomod != "" {
				files[gomod] = true
				files[filepath.Join(filepath.Dir(gomod), "go.sum")] = true
			}
		}
	}
	if w := strings.TrimSpace(string(work)); w != "" && w != "off" {
		files[w] = true
		files[w+".sum"] = true
	}
	s := &Sources{}
	for f := range files {
		s.Files = append(s.Files, f)
	}
	for d := range dirs {
		s.Dirs = append(s.Dirs, d)
	}
	slices.Sort(s.Files)
	slices.Sort(s.Dirs)
	return s, nil
}

// listedPackage is what Sources reads of go list's account of a package.
type listedPackage struct {
	Dir    string
	Module *struct {
		Main    bool
		GoMod   string
		Replace *struct {
			Version, GoMod string
		}
	}
	GoFiles, CgoFiles, CFiles, CXXFiles, HFiles, SFiles, SysoFiles, EmbedFiles []string
}

// editable reports whether the package's files are the user's: in a main
// module, or in a module replaced by a directory.
func (lp *listedPackage) editable() bool {
	m := lp.Module
	return lp.Dir != "" && m != nil && (m.Main || m.Replace != nil && m.Replace.Version == "")
}

// decodePackages reads go list -json's stream of packages.
func decodePackages(out []byte) ([]listedPackage, error) {
	var list []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var lp listedPackage
		if err := dec.Decode(&lp); errors.Is(err, io.EOF) {
			return list, nil
		} else if err != nil {
			return nil, fmt.Errorf("reading go list output: %w", err)
		}
		list = append(list, lp)
	}
}

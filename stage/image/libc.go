package image

import (
	"archive/tar"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/beamctl/beamctl/internal/libc"
	"github.com/beamctl/beamctl/internal/problem"
)

// checkLibc refuses a worker that could not start on the image it goes
// on: one linked dynamically, on beamctl's own base, which has no C
// library, or on a base without its loader or with an older glibc than it
// needs. img is the base's image for p.
func (o *Options) checkLibc(p Platform, img v1.Image) error {
	needs, err := libc.ReadFile(p.Worker)
	switch {
	case errors.Is(err, libc.ErrNotELF):
		return nil
	case err != nil:
		return fmt.Errorf("reading how the %s worker links the C library: %w", p.Platform, err)
	case needs.Static():
		return nil
	}
	glibc := cmp.Or(needs.GLIBC, "any")
	if o.Base == "" {
		return problem.Usagef(fmt.Sprintf("give a {Base} with glibc %s or newer for %s (a Debian or Ubuntu image), or build the worker with {CGO}, which links it statically", glibc, p.Platform),
			"the %s worker is linked dynamically (interpreter %s, glibc %s) and beamctl's own base image has no C library", p.Platform, needs.Interpreter, glibc).About("Base")
	}
	have, err := imageGlibc(img, needs.Interpreter, p.Platform.Arch)
	if err != nil {
		return err
	}
	fix := fmt.Sprintf("choose a {Base} with glibc %s or newer for %s, or build the worker with {CGO}, which links it statically", glibc, p.Platform)
	switch {
	case !have.loader:
		return problem.Usagef(fix, "base image %q has no %s, the loader of the %s worker (glibc %s)", o.Base, needs.Interpreter, p.Platform, glibc).About("Base")
	case have.glibc == "":
		return problem.Usagef(fix, "base image %q has no glibc (libc.so.6) beside %s for the %s worker, which needs glibc %s", o.Base, needs.Interpreter, p.Platform, glibc).About("Base")
	case libc.Compare(have.glibc, needs.GLIBC) < 0:
		return problem.Usagef(fix, "base image %q has glibc %s and the %s worker needs glibc %s (GLIBC_%s)", o.Base, have.glibc, p.Platform, needs.GLIBC, needs.GLIBC).About("Base")
	}
	o.Logger.Debug("base image's C library", "platform", p.Platform.String(), "interpreter", needs.Interpreter, "glibc", have.glibc, "worker needs", needs.GLIBC)
	return nil
}

// imageLibc is what an image's filesystem offers a dynamic executable.
type imageLibc struct {
	// loader is whether the interpreter asked for is a file in it.
	loader bool
	// glibc is the newest version its libc.so.6 defines.
	glibc string
}

// libDirs are where glibc's loader looks for libc.so.6 in Debian, Ubuntu,
// Fedora and their kin, besides the loader's own directory.
var libDirs = []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// maxLibc bounds what is read of a file named like a C library: glibc's
// libc.so.6 is a few megabytes.
const maxLibc = 32 << 20

// imageGlibc reads img's flattened filesystem for the loader interp and
// the glibc beside it, following symbolic links as the kernel and the
// loader would (a merged /usr links /lib to usr/lib).
func imageGlibc(img v1.Image, interp, goarch string) (imageLibc, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	fsys := tarTree{links: map[string]string{}, files: map[string][]byte{}, regular: map[string]bool{}}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return imageLibc{}, fmt.Errorf("reading the base image's files: %w", err)
		}
		name := path.Clean("/" + h.Name)
		switch h.Typeflag {
		case tar.TypeSymlink:
			fsys.links[name] = h.Linkname
		case tar.TypeLink:
			fsys.links[name] = "/" + strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
		case tar.TypeReg:
			fsys.regular[name] = true
			if base := path.Base(name); (base == "libc.so.6" || strings.HasPrefix(base, "libc-")) && h.Size <= maxLibc {
				data, err := io.ReadAll(tr)
				if err != nil {
					return imageLibc{}, fmt.Errorf("reading the base image's %s: %w", name, err)
				}
				fsys.files[name] = data
			}
		}
	}
	var out imageLibc
	loader, ok := fsys.resolve(interp)
	out.loader = ok && fsys.regular[loader]
	dirs := libDirs
	if ok {
		dirs = append([]string{path.Dir(loader), path.Dir(interp)}, dirs...)
	}
	if triple, ok := libc.GNUTriple(goarch); ok {
		dirs = append([]string{"/lib/" + triple, "/usr/lib/" + triple}, dirs...)
	}
	for _, d := range dirs {
		p, ok := fsys.resolve(d + "/libc.so.6")
		if data, found := fsys.files[p]; ok && found {
			v, err := libc.Provides(bytes.NewReader(data))
			if err != nil {
				return imageLibc{}, fmt.Errorf("reading the base image's %s: %w", p, err)
			}
			out.glibc = v
			break
		}
	}
	return out, nil
}

// tarTree is an image's files as far as resolving a path needs them.
type tarTree struct {
	links   map[string]string
	regular map[string]bool
	files   map[string][]byte
}

// resolve follows the symbolic links along p, in each directory and at
// the end, to the path it names; ok is false for a loop.
func (t tarTree) resolve(p string) (string, bool) {
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		target, ok := t.links[next]
		if !ok {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", false
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		rest = append(strings.Split(strings.TrimPrefix(path.Clean(target), "/"), "/"), rest...)
		cur = "/"
	}
	return cur, true
}

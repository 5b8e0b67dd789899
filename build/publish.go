package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/digest"
)

// publishFault, when a test sets it, is called at each step of publishing
// and fails that step with what it returns: how the tests show that a
// failure anywhere leaves the old output as it was.
var publishFault func(step string) error

func fault(step string) error {
	if publishFault == nil {
		return nil
	}
	return publishFault(step)
}

// staleStaging is how old a staging directory must be before a publish
// takes it for the leftover of a killed beamctl rather than one that
// another build is still filling.
const staleStaging = time.Hour

// publish replaces dir as a whole with the built binaries, the manifest
// and whatever else dir held that no build wrote. The new output is made
// in a directory beside dir, on the same file system, and swapped in by
// rename, so that a reader that opens dir sees the old output or the new,
// never a mix of both, and a failure or cancellation at any step leaves
// dir as it was and nothing beside it.
func publish(ctx context.Context, dir string, m *Manifest, jobs []*job, log *slog.Logger) error {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		// A link to the output stays a link: its target is what is replaced.
		dir = real
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return &OutputError{Dir: dir, Reason: "cannot be created (" + errReason(err) + ")"}
	}
	old, _ := ReadManifest(dir)
	var keepMode *os.FileMode
	stageIn, inPlace := parent, false
	if fi, err := os.Stat(dir); err == nil {
		perm := fi.Mode().Perm()
		keepMode = &perm
		if pi, err := os.Stat(parent); err == nil && !sameDevice(fi, pi) {
			// A mount point, such as a container's volume, cannot be
			// renamed: its content is replaced instead.
			stageIn, inPlace = dir, true
		}
	}
	base := filepath.Base(dir)
	sweepStaging(stageIn, base, log)
	tmp, err := makeStaging(stageIn, base)
	if err != nil {
		return &OutputError{Dir: dir, Reason: "cannot be replaced (" + errReason(err) + ")"}
	}
	// After a swap, tmp holds the old output.
	defer removeTree(tmp)
	if err := fill(ctx, tmp, dir, old, m, jobs, !inPlace, log); err != nil {
		return err
	}
	// Last, as the mode may not let the owner write.
	if keepMode != nil && !inPlace {
		if err := os.Chmod(tmp, *keepMode); err != nil {
			return fmt.Errorf("replacing %s: %w", dir, err)
		}
	}
	if err := fault("swap"); err != nil {
		return err
	}
	// The last moment to stop: once swapped, the build has succeeded.
	if err := ctx.Err(); err != nil {
		return err
	}
	if inPlace {
		return moveIn(tmp, dir, old, m)
	}
	if err := swap(tmp, dir); err != nil {
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	return nil
}

// stagingPrefix starts the names of the directories a publish of base
// fills before it swaps them in.
func stagingPrefix(base string) string { return "." + base + ".new-" }

// makeStaging creates the directory the new output of base is made in.
func makeStaging(in, base string) (string, error) {
	for {
		tmp := filepath.Join(in, stagingPrefix(base)+rand.Text()[:10])
		err := os.Mkdir(tmp, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			return tmp, err
		}
	}
}

// removeTree removes a staging directory, or the old output swapped out
// into it, even if its mode does not let its owner write.
func removeTree(dir string) {
	os.Chmod(dir, 0o700)
	os.RemoveAll(dir)
}

// sweepStaging removes what killed publishes of base left in dir.
func sweepStaging(dir, base string, log *slog.Logger) {
	left, _ := filepath.Glob(filepath.Join(dir, stagingPrefix(base)+"*"))
	for _, p := range left {
		if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > staleStaging {
			log.Debug("removing a staging directory left by an earlier build", "dir", p)
			removeTree(p)
		}
	}
}

// fill makes tmp the new content of dir: each binary a hard link to the
// build cache's file, the entries of dir that no build wrote (when carry
// is set), and the manifest.
func fill(ctx context.Context, tmp, dir string, old, m *Manifest, jobs []*job, carry bool, log *slog.Logger) error {
	built := map[string]bool{ManifestFile: true}
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := place(ctx, j.cacheOut, filepath.Join(tmp, j.bin.File), filepath.Join(dir, j.bin.File), log); err != nil {
			return err
		}
		built[j.bin.File] = true
		if err := fault("binary " + j.bin.File); err != nil {
			return err
		}
	}
	if carry {
		if err := carryOver(dir, tmp, old, built, log); err != nil {
			return err
		}
	}
	data, err := m.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, ManifestFile), data, 0o644); err != nil {
		return err
	}
	return fault("manifest")
}

// carryOver links into tmp what dir holds besides the outputs of builds,
// such as a user's notes: replacing dir must not lose them. The binaries
// of dir's manifest are left behind, as are those of targets no longer
// built.
func carryOver(dir, tmp string, old *Manifest, built map[string]bool, log *slog.Logger) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	owned := map[string]bool{}
	if old != nil {
		for _, b := range old.Binaries {
			owned[b.File] = true
		}
	}
	for _, e := range ents {
		if n := e.Name(); !built[n] && !owned[n] {
			if err := linkTree(filepath.Join(dir, n), filepath.Join(tmp, n), log); err != nil {
				return fmt.Errorf("keeping %s in %s: %w", n, dir, err)
			}
		}
	}
	return nil
}

// linkTree makes dst a copy of src whose files are hard links, so that
// nothing is copied and src is left as it is.
func linkTree(src, dst string, log *slog.Logger) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		if err := os.Link(src, dst); err != nil {
			return copyFile(src, dst, fi.Mode().Perm())
		}
		return nil
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := linkTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), log); err != nil {
				return err
			}
		}
		return os.Chmod(dst, fi.Mode().Perm())
	}
	log.Debug("not keeping a special file in the new output", "path", src, "mode", fi.Mode())
	return nil
}

// swap puts tmp at dir, and what was at dir at tmp.
func swap(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err == nil {
			return nil
		}
		// Made by someone else meanwhile: swapped like any other.
	}
	if ok, err := exchange(tmp, dir); ok {
		return err
	}
	// Without an exchange, dir is missing between the two renames, but
	// never holds a mix.
	aside := tmp + ".old"
	if err := os.Rename(dir, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(aside, dir); rerr != nil {
			return fmt.Errorf("%w; the old output is at %s (%v)", err, aside, rerr)
		}
		return err
	}
	removeTree(aside)
	return nil
}

// moveIn publishes into dir itself, for an output that cannot be
// replaced: each binary renamed into place and the manifest last, so a
// manifest never names a file that is not there, then the binaries of
// targets no longer built removed.
func moveIn(tmp, dir string, old, m *Manifest) error {
	keep := map[string]bool{}
	for _, b := range m.Binaries {
		if !keep[b.File] {
			keep[b.File] = true
			if err := os.Rename(filepath.Join(tmp, b.File), filepath.Join(dir, b.File)); err != nil {
				return fmt.Errorf("writing %s: %w", filepath.Join(dir, b.File), err)
			}
		}
	}
	if err := os.Rename(filepath.Join(tmp, ManifestFile), filepath.Join(dir, ManifestFile)); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if old != nil {
		for _, b := range old.Binaries {
			if !keep[b.File] {
				os.Remove(filepath.Join(dir, b.File))
			}
		}
	}
	return nil
}

// place makes dst the same file as src: a hard link when they share a
// file system (no 130 MB copy on every build); else, when the previous
// output's file prev holds the same bytes, a link to that; else a copy.
func place(ctx context.Context, src, dst, prev string, log *slog.Logger) error {
	err := os.Link(src, dst)
	if err == nil {
		return nil
	}
	log.Debug("hard link failed, copying", "src", src, "dst", dst, "err", err)
	if sameContent(ctx, src, prev) && os.Link(prev, dst) == nil {
		return nil
	}
	si, err := os.Stat(src)
	if err == nil {
		err = copyFile(src, dst, si.Mode().Perm())
	}
	if err != nil {
		// Named as the user knows it, in DIST, not by the temporary
		// directory that held it.
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == dst {
			err = pe.Err
		}
		return fmt.Errorf("writing %s: %w", prev, err)
	}
	return nil
}

// sameContent reports whether dst already holds src's bytes, so a copy
// across filesystems is skipped when nothing changed.
func sameContent(ctx context.Context, src, dst string) bool {
	a, _, err1 := binaryDigest(ctx, src, digest.NewCache())
	b, err2 := digest.File(ctx, dst)
	return err1 == nil && err2 == nil && a == b.SHA256
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sumRecord remembers a binary's sha256 by its Go build ID, which changes
// whenever its content does, so an up-to-date binary is not re-hashed.
type sumRecord struct {
	BuildID string `json:"buildID"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// binaryDigest returns the sha256 and size of a binary in the build cache, from
// the record beside it when the build ID and size still match.
func binaryDigest(ctx context.Context, path string, digests *digest.Cache) (string, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	id := readBuildID(path)
	rec := path + ".sum.json"
	if id != "" {
		var r sumRecord
		if data, err := os.ReadFile(rec); err == nil && json.Unmarshal(data, &r) == nil &&
			r.BuildID == id && r.Size == fi.Size() {
			return r.SHA256, r.Size, nil
		}
	}
	ds, err := digests.Sum(ctx, path)
	if err != nil {
		return "", 0, err
	}
	sum, size := ds.SHA256, ds.Size
	if id != "" {
		if data, err := json.Marshal(sumRecord{BuildID: id, Size: size, SHA256: sum}); err == nil {
			_ = atomicfile.WriteFile(rec, data, 0o644)
		}
	}
	return sum, size, nil
}

var buildIDMarker = []byte("\xff Go build ID: \"")

// readBuildID returns the Go build ID of an executable, or "" if there is
// none or the file is missing. ELF binaries carry it in a note; the others
// in a marked string at the start of their text.
func readBuildID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if ef, err := elf.NewFile(f); err == nil {
		if sec := ef.Section(".note.go.buildid"); sec != nil {
			data, err := sec.Data()
			// namesz, descsz, type, then "Go\x00\x00" and the ID.
			if err != nil || len(data) < 16 {
				return ""
			}
			nameSize := int(ef.ByteOrder.Uint32(data[0:4]))
			descSize := int(ef.ByteOrder.Uint32(data[4:8]))
			off := 12 + (nameSize+3)&^3
			if off+descSize > len(data) {
				return ""
			}
			return string(data[off : off+descSize])
		}
		return ""
	}
	buf := make([]byte, 64<<10)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	buf = buf[:n]
	i := bytes.Index(buf, buildIDMarker)
	if i < 0 {
		return ""
	}
	rest := buf[i+len(buildIDMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

package build

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/digest"
)

// publish puts the built binaries and the manifest into dir. Each file
// lands by rename, and the manifest last, so a reader never sees a
// manifest that names a binary that is not there.
func publish(dir string, m *Manifest, jobs []*job, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &OutputError{Dir: dir, Reason: "cannot be created (" + errReason(err) + ")"}
	}
	old, _ := ReadManifest(dir)
	for _, j := range jobs {
		if err := place(j.cacheOut, filepath.Join(dir, j.bin.File), log); err != nil {
			return err
		}
	}
	data, err := m.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ManifestFile), data, 0o644); err != nil {
		return err
	}
	// Binaries of targets no longer built would otherwise linger beside a
	// manifest that no longer names them.
	if old != nil {
		keep := map[string]bool{}
		for _, b := range m.Binaries {
			keep[b.File] = true
		}
		for _, b := range old.Binaries {
			if !keep[b.File] {
				os.Remove(filepath.Join(dir, b.File))
			}
		}
	}
	return nil
}

// place makes dst the same file as src: a hard link when they share a
// filesystem (no 130 MB copy on every build), a copy otherwise.
func place(src, dst string, log *slog.Logger) error {
	si, err := os.Stat(src)
	if err != nil {
		return err
	}
	if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		log.Debug("hard link failed, copying", "src", src, "dst", dst, "err", err)
		if sameContent(src, dst) {
			return nil
		}
		if err := copyFile(src, tmp, si.Mode().Perm()); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", dst, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// sameContent reports whether dst already holds src's bytes, so a copy
// across filesystems is skipped when nothing changed.
func sameContent(src, dst string) bool {
	a, _, err1 := binaryDigest(src, digest.NewCache())
	b, err2 := digest.File(context.Background(), dst)
	return err1 == nil && err2 == nil && a == b.SHA256
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
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
func binaryDigest(path string, digests *digest.Cache) (string, int64, error) {
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
	ds, err := digests.Sum(context.Background(), path)
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

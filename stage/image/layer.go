package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// layerRecipe changes whenever the bytes a layer is made of would change
// for the same inputs (tar header fields, compression), so cached layers of
// an older recipe are never reused.
const layerRecipe = "beamctl-layer-v1"

// entry is one file or directory of a layer.
type entry struct {
	name string // absolute path in the image, without the leading slash
	mode int64  // permission bits; directories get TypeDir
	uid  int
	dir  bool
	// Exactly one of data and file is the content of a regular file.
	data []byte
	file string
	size int64
}

// writeTar writes entries in a form that depends only on them: sorted,
// with parent directories made explicit, and with fixed times, owners and
// formats, so the same inputs give the same layer on any machine.
func writeTar(w io.Writer, entries []entry, mtime time.Time) error {
	all := map[string]entry{}
	for _, e := range entries {
		all[e.name] = e
		for dir := path.Dir(e.name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := all[dir]; !ok {
				all[dir] = entry{name: dir, mode: 0o755, dir: true}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		e := all[n]
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
			if e.file != "" {
				h.Size = e.size
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.dir {
			continue
		}
		if e.file == "" {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
			continue
		}
		if err := copyFileTo(tw, e.file, e.size); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFileTo(w io.Writer, name string, size int64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size+1))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed while it was read into an image layer", name)
	}
	return nil
}

// layerMeta is what the layer cache keeps beside each compressed layer.
type layerMeta struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
}

// fileLayer is a compressed layer kept in a file: its digests are known
// without reading it again.
type fileLayer struct {
	path string
	meta layerMeta
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.meta.Digest) }
func (l *fileLayer) DiffID() (v1.Hash, error) { return v1.NewHash(l.meta.DiffID) }
func (l *fileLayer) Size() (int64, error)     { return l.meta.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// layerCache keeps compressed layers by what they are made of, so an
// unchanged worker is never compressed again.
type layerCache struct{ dir string }

// layer returns the layer of entries, from the cache when key (which must
// identify the entries' content) was made before.
func (c layerCache) layer(key string, entries []entry, mtime time.Time) (*fileLayer, error) {
	h := sha256.Sum256([]byte(layerRecipe + "\x00" + mtime.UTC().Format(time.RFC3339) + "\x00" + key))
	dir := filepath.Join(c.dir, hex.EncodeToString(h[:])[:32])
	l := &fileLayer{path: filepath.Join(dir, "layer.tar.gz")}
	if data, err := os.ReadFile(filepath.Join(dir, "meta.json")); err == nil && json.Unmarshal(data, &l.meta) == nil {
		if fi, err := os.Stat(l.path); err == nil && fi.Size() == l.meta.Size {
			return l, nil
		}
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the layer cache: %w", err)
	}
	tmp, err := os.MkdirTemp(c.dir, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating the layer cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	meta, err := compress(filepath.Join(tmp, "layer.tar.gz"), entries, mtime)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), data, 0o644); err != nil {
		return nil, fmt.Errorf("writing the layer cache: %w", err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("writing the layer cache: %w", err)
	}
	l.meta = meta
	return l, nil
}

// compress writes the gzipped tar of entries to name in one pass, hashing
// the tar (the diff id) and the compressed bytes (the digest) as it goes.
func compress(name string, entries []entry, mtime time.Time) (layerMeta, error) {
	f, err := os.Create(name)
	if err != nil {
		return layerMeta{}, fmt.Errorf("writing an image layer: %w", err)
	}
	defer f.Close()
	digest, diffID := sha256.New(), sha256.New()
	size := &countWriter{w: io.MultiWriter(f, digest)}
	zw, err := gzip.NewWriterLevel(size, gzip.DefaultCompression)
	if err != nil {
		return layerMeta{}, err
	}
	if err := writeTar(io.MultiWriter(zw, diffID), entries, mtime); err != nil {
		return layerMeta{}, fmt.Errorf("writing an image layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layerMeta{}, fmt.Errorf("writing an image layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return layerMeta{}, fmt.Errorf("writing an image layer: %w", err)
	}
	return layerMeta{Digest: sha(digest), DiffID: sha(diffID), Size: size.n}, nil
}

func sha(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// cleanName turns an image path into a tar entry name.
func cleanName(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/digest"
)

// layerRecipe changes whenever the bytes a layer is made of would change
// for the same inputs (tar header fields, compression), so cached layers of
// an older recipe are never reused.
const layerRecipe = "beamctl-layer-v2"

// gzipLevel is the layers' compression level.
const gzipLevel = gzip.DefaultCompression

// compressor names the gzip implementation that compresses layers, by its
// module version where the binary records it: another version may
// compress the same tar to other bytes, which must not pass for the
// cached ones.
var compressor = sync.OnceValue(func() string {
	const mod = "github.com/klauspost/compress"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == mod {
				if d.Replace != nil {
					d = d.Replace
				}
				return mod + "@" + d.Version + " " + d.Sum
			}
		}
	}
	return mod
})

// entry is one file or directory of a layer.
type entry struct {
	name string // absolute path in the image, without the leading slash
	mode int64  // permission bits; directories get TypeDir
	uid  int
	dir  bool
	// Exactly one of data and file is the content of a regular file; a
	// file's sha256 is what it must hold, checked as it is read.
	data   []byte
	file   string
	size   int64
	sha256 string
}

// writeTar writes entries in a form that depends only on them: sorted,
// with parent directories made explicit, and with fixed times, owners and
// formats, so the same inputs give the same layer on any machine.
func writeTar(ctx context.Context, w io.Writer, entries []entry, mtime time.Time, digests *digest.Cache) error {
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
		if err := copyFileTo(ctx, tw, e, digests); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFileTo copies e's file to w, checking that it still holds the
// content the layer is cached under: a file rewritten since it was
// verified would otherwise be cached under its old digest. A file the
// digest cache knows is checked by its state, before and after, instead
// of hashed once more.
func copyFileTo(ctx context.Context, w io.Writer, e entry, digests *digest.Cache) error {
	f, err := os.Open(e.file)
	if err != nil {
		return err
	}
	defer f.Close()
	known, ok := digests.Known(e.file, f)
	trusted := ok && known.SHA256 == e.sha256
	h := digest.New()
	if !trusted {
		w = io.MultiWriter(w, h)
	}
	n, err := io.Copy(w, ctxReader{ctx, io.LimitReader(f, e.size+1)})
	if err != nil {
		return err
	}
	if n != e.size || trusted && !digests.Unchanged(e.file, f) || !trusted && h.Hex() != e.sha256 {
		return fmt.Errorf("%s changed while it was read into an image layer", e.file)
	}
	return nil
}

// ctxReader stops a long read, such as compressing a large worker, when
// ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// layerMeta is what the layer cache keeps beside each compressed layer.
type layerMeta struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
	// Stamp is the blob's digest.Stamp when it was written or last
	// checked: while it holds, the blob need not be hashed again.
	Stamp string `json:"stamp,omitempty"`
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
// unchanged worker is never compressed again. Under dir, blobs/ holds
// each compressed layer named by its digest, and a record per key names
// the blob of that key's layer with its digests. Both are only ever
// written whole under a temporary name and renamed into place, never
// removed, so processes that share the cache may fill it at once: a name
// holds nothing or the complete file, and two processes making the same
// layer write the same bytes. A reader checks the blob against the
// record before it trusts either.
type layerCache struct {
	dir     string
	digests *digest.Cache
	log     *slog.Logger
}

// layerKey identifies a layer by the content of its entries, and by all
// that decides how they become bytes: the recipe, the compressor and the
// times.
func layerKey(entries []entry, mtime time.Time) string {
	h := digest.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\x00", layerRecipe, compressor(), gzipLevel, mtime.UTC().Format(time.RFC3339Nano))
	for _, e := range slices.SortedFunc(slices.Values(entries), func(a, b entry) int { return strings.Compare(a.name, b.name) }) {
		sum, size := e.sha256, e.size
		if e.file == "" {
			s := sha256.Sum256(e.data)
			sum, size = hex.EncodeToString(s[:]), int64(len(e.data))
		}
		fmt.Fprintf(h, "%q %o %d %t %d %s\x00", e.name, e.mode, e.uid, e.dir, size, sum)
	}
	return h.Hex()
}

// layer returns the layer of entries, from the cache when it was made
// before.
func (c layerCache) layer(ctx context.Context, entries []entry, mtime time.Time) (*fileLayer, error) {
	key := layerKey(entries, mtime)
	record := filepath.Join(c.dir, key+".json")
	l, err := c.cached(ctx, record)
	switch {
	case l != nil:
		return l, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		c.log.Debug("cached layer unusable, making it again", "record", record, "error", err)
	}
	blobs := filepath.Join(c.dir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, fmt.Errorf("creating the layer cache: %w", err)
	}
	var meta layerMeta
	// Another process may have put the same bytes under the same name
	// meanwhile: replacing them is harmless, and readers of the old file
	// keep it.
	path, err := atomicfile.WriteAs(blobs, 0o644, func(w io.Writer) (string, error) {
		var err error
		meta, err = compress(ctx, w, entries, mtime, c.digests)
		return filepath.Base(c.blobPath(meta.Digest)), err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("writing an image layer: %w", err)
	}
	l = &fileLayer{path: path, meta: meta}
	if fi, err := os.Stat(l.path); err == nil {
		l.meta.Stamp = digest.Stamp(fi)
	}
	if err := writeRecord(record, l.meta); err != nil {
		return nil, err
	}
	return l, nil
}

func writeRecord(record string, meta layerMeta) error {
	data, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(record, data, 0o644); err != nil {
		return fmt.Errorf("writing the layer cache: %w", err)
	}
	return nil
}

func (c layerCache) blobPath(d string) string {
	return filepath.Join(c.dir, "blobs", strings.TrimPrefix(d, "sha256:")+".tar.gz")
}

// cached is the layer that record names, once its blob is checked to be
// exactly the bytes the record describes; nil without an error when there
// is no record.
func (c layerCache) cached(ctx context.Context, record string) (*fileLayer, error) {
	data, err := os.ReadFile(record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var meta layerMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("reading %s: %w", record, err)
	}
	for _, d := range []string{meta.Digest, meta.DiffID} {
		if !strings.HasPrefix(d, "sha256:") || !digest.Valid(strings.TrimPrefix(d, "sha256:")) {
			return nil, fmt.Errorf("%s names an invalid digest %q", record, d)
		}
	}
	l := &fileLayer{path: c.blobPath(meta.Digest), meta: meta}
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != meta.Size {
		return nil, fmt.Errorf("%s is not the %d bytes its record says", l.path, meta.Size)
	}
	if stamp := digest.Stamp(fi); stamp != "" && stamp == meta.Stamp {
		return l, nil
	}
	// Not the file last checked (another process renamed its copy in) or
	// changed since: hashed once, then trusted by its new stamp.
	if err := c.digests.VerifyOpen(ctx, l.path, f, strings.TrimPrefix(meta.Digest, "sha256:")); err != nil {
		return nil, err
	}
	l.meta.Stamp = digest.Stamp(fi)
	if err := writeRecord(record, l.meta); err != nil {
		c.log.Debug("layer record not updated", "record", record, "error", err)
	}
	return l, nil
}

// compress writes the gzipped tar of entries to w in one pass, hashing
// the tar (the diff id) and the compressed bytes (the digest) as it goes.
func compress(ctx context.Context, w io.Writer, entries []entry, mtime time.Time, digests *digest.Cache) (layerMeta, error) {
	blobSum, diffID := sha256.New(), sha256.New()
	size := &countWriter{w: io.MultiWriter(w, blobSum)}
	zw, err := gzip.NewWriterLevel(size, gzipLevel)
	if err != nil {
		return layerMeta{}, err
	}
	if err := writeTar(ctx, io.MultiWriter(zw, diffID), entries, mtime, digests); err != nil {
		return layerMeta{}, err
	}
	if err := zw.Close(); err != nil {
		return layerMeta{}, err
	}
	return layerMeta{Digest: sha(blobSum), DiffID: sha(diffID), Size: size.n}, nil
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

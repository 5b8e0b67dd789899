// Package digest is beamctl's one way of naming a file's content: its
// sha256. A Cache remembers digests per run, keyed by the file's identity
// and state, so a worker binary is hashed at most once however many steps
// (capture, staging, the local pool) need its digest.
package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"
)

// Sum is a file's content digest and size.
type Sum struct {
	SHA256 string
	Size   int64
}

// Hash is a streaming sha256 that reports its digest as lower-case hex.
type Hash struct{ hash.Hash }

// New returns an empty Hash.
func New() Hash { return Hash{sha256.New()} }

// Hex returns the digest of what was written so far.
func (h Hash) Hex() string { return hex.EncodeToString(h.Sum(nil)) }

// readChunk is how much of a file is read at a time while hashing.
const readChunk = 1 << 20

// File streams the file at path through sha256. It stops early when ctx
// ends.
func File(ctx context.Context, path string) (Sum, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sum{}, err
	}
	defer f.Close()
	return Reader(ctx, f)
}

// Reader streams r through sha256.
func Reader(ctx context.Context, r io.Reader) (Sum, error) {
	h := New()
	buf := make([]byte, readChunk)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return Sum{}, err
		}
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return Sum{SHA256: h.Hex(), Size: n}, nil
		}
		if err != nil {
			return Sum{}, err
		}
	}
}

// MismatchError is a file whose content is not the digest expected of it.
type MismatchError struct {
	Path      string
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s has sha256 %s, not the expected %s", e.Path, Short(e.Got), Short(e.Want))
}

// Valid reports whether sum is a sha256 as beamctl writes them: 64
// lower-case hex digits.
func Valid(sum string) bool {
	if len(sum) != 64 {
		return false
	}
	for _, c := range []byte(sum) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Short abbreviates a digest for messages.
func Short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// modTimeCutoff keeps digests of files changed in the last moments out of a
// Cache: a write landing within the file system's timestamp granularity of
// the hash leaves the times unchanged. cmd/go trusts file times on the same
// terms.
const modTimeCutoff = 2 * time.Second

// cutoff is how long ago the file must have last changed for its digest to
// be remembered: modTimeCutoff, or fineCutoff where the file system keeps
// sub-second times from a clock known to tick finer than that.
func (s state) cutoff() time.Duration {
	if fineTimes && (s.mtime%1e9 != 0 || s.ctime%1e9 != 0) {
		return fineCutoff
	}
	return modTimeCutoff
}

// Cache remembers digests of files for as long as they stay in the state
// they had when hashed: same file (device and inode), size, modification
// and change time. The change time cannot be set back by a user, so a file
// rewritten in place with its old modification time restored is hashed
// again. The zero value is not ready: use NewCache.
type Cache struct {
	mu      sync.Mutex
	entries map[fileKey]entry
	hashed  map[fileKey]int64
	now     func() time.Time
}

type entry struct {
	st  state
	sum Sum
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{entries: map[fileKey]entry{}, hashed: map[fileKey]int64{}, now: time.Now}
}

// Sum returns the digest of the file at path, hashing it unless the cache
// knows it in its current state.
func (c *Cache) Sum(ctx context.Context, path string) (Sum, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sum{}, err
	}
	defer f.Close()
	return c.sumOpen(ctx, path, f)
}

// sumOpen is Sum for the open file f found at path: what the cache knows of
// f's state, or else f's content, read through f itself.
func (c *Cache) sumOpen(ctx context.Context, path string, f *os.File) (Sum, error) {
	before, err := statOf(f)
	if err != nil {
		return Sum{}, err
	}
	if s, ok := c.lookup(path, before); ok {
		return s, nil
	}
	started := c.now()
	s, err := Reader(ctx, io.NewSectionReader(f, 0, before.size+1))
	if err != nil {
		return Sum{}, err
	}
	c.mu.Lock()
	c.hashed[before.key(path)] += s.Size
	c.mu.Unlock()
	if after, err := statOf(f); err == nil && after == before && s.Size == before.size &&
		before.newest().Before(started.Add(-before.cutoff())) {
		c.store(path, before, s)
	}
	return s, nil
}

// VerifyOpen checks that the open file f, found at path, has the digest
// want. Checking the open file, not the path, is what lets a caller run
// exactly what was checked.
func (c *Cache) VerifyOpen(ctx context.Context, path string, f *os.File, want string) error {
	s, err := c.sumOpen(ctx, path, f)
	if err != nil {
		return err
	}
	if s.SHA256 != want {
		return &MismatchError{Path: path, Want: want, Got: s.SHA256}
	}
	return nil
}

// Record tells the cache the digest of a file whose content the caller
// vouches for, such as a binary the build has just written and hashed. It is
// trusted only while the file keeps the state it has now, and only if its
// size agrees.
func (c *Cache) Record(path string, s Sum) error {
	st, err := statPath(path)
	if err != nil {
		return err
	}
	if st.size != s.Size {
		return fmt.Errorf("%s has %d bytes, not the recorded %d", path, st.size, s.Size)
	}
	c.store(path, st, s)
	return nil
}

// Known returns the digest of the open file f at path if the cache knows it
// in f's current state, without reading f.
func (c *Cache) Known(path string, f *os.File) (Sum, bool) {
	st, err := statOf(f)
	if err != nil {
		return Sum{}, false
	}
	return c.lookup(path, st)
}

// Unchanged reports whether the open file f is still in the state the cache
// knows it in, for callers that must check it stayed so while they read it.
func (c *Cache) Unchanged(path string, f *os.File) bool {
	_, ok := c.Known(path, f)
	return ok
}

// StillIs reports whether the open file f at path still holds the content
// with digest want, which the cache knew it by before a caller read it:
// at once if f is in the state the cache knows, else by hashing it again.
// A new hard link or a chmod moves a file's change time as a rewrite does
// (a build of the same binary elsewhere links it), so only content that
// hashes differently, or a size that moved, tells that f changed.
func (c *Cache) StillIs(ctx context.Context, path string, f *os.File, want Sum) (bool, error) {
	s, err := c.sumOpen(ctx, path, f)
	if err != nil {
		return false, err
	}
	return s == want, nil
}

// Hashed returns how many bytes of the file at path this cache has hashed,
// under any of its names: a measure of work done, for tests and benchmarks.
func (c *Cache) Hashed(path string) int64 {
	st, err := statPath(path)
	if err != nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hashed[st.key(path)]
}

func (c *Cache) lookup(path string, st state) (Sum, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[st.key(path)]
	if !ok || e.st != st {
		return Sum{}, false
	}
	return e.sum, true
}

func (c *Cache) store(path string, st state, s Sum) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[st.key(path)] = entry{st: st, sum: s}
}

// Stamp names the file fi describes and the version of its content, for
// callers that keep a digest beyond a run, such as a cache on disk: while
// a file's Stamp stays the same, it is the file that was hashed and it
// was not rewritten. It is "" where the system does not tell a file's
// identity and change time, and a caller must hash again.
func Stamp(fi os.FileInfo) string {
	s := stateOf(fi)
	if s.ino == 0 || s.ctime == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%d:%d:%d:%d", s.dev, s.ino, s.size, s.mtime, s.ctime)
}

// fileKey names a file: by device and inode where the system tells them,
// so every hard link of a file shares its entry, else by path.
type fileKey struct {
	dev, ino uint64
	path     string
}

func (s state) key(path string) fileKey {
	if s.ino != 0 {
		return fileKey{dev: s.dev, ino: s.ino}
	}
	return fileKey{path: path}
}

// state identifies a file and the version of its content.
type state struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

func (s state) newest() time.Time { return time.Unix(0, max(s.mtime, s.ctime)) }

func statOf(f *os.File) (state, error) {
	fi, err := f.Stat()
	if err != nil {
		return state{}, err
	}
	return stateOf(fi), nil
}

func statPath(path string) (state, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return state{}, err
	}
	return stateOf(fi), nil
}

package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// oldFile writes content to a new file whose times are well in the past, as
// a binary built a while ago.
func oldFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// ageCache makes the cache see every file as changed long before it hashes
// it: the change time, unlike the modification time, cannot be set back.
func ageCache(c *Cache) *Cache {
	c.now = func() time.Time { return time.Now().Add(time.Hour) }
	return c
}

func TestCache(t *testing.T) {
	for _, tt := range []struct {
		name       string
		change     func(t *testing.T, path string)
		wantHashed int64 // bytes hashed by the second Sum
		wantSum    string
	}{
		{"unchanged", func(*testing.T, string) {}, 0, sumOf([]byte("worker-1"))},
		{"rewritten in place, mtime restored", func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			if err := os.WriteFile(p, []byte("worker-2"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, 8, sumOf([]byte("worker-2"))},
		{"replaced by rename", func(t *testing.T, p string) {
			tmp := p + ".new"
			if err := os.WriteFile(tmp, []byte("worker-3"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}, 8, sumOf([]byte("worker-3"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := oldFile(t, "worker-1")
			c := ageCache(NewCache())
			ctx := context.Background()
			if s, err := c.Sum(ctx, p); err != nil || s.SHA256 != sumOf([]byte("worker-1")) || s.Size != 8 {
				t.Fatalf("Sum = %+v, %v", s, err)
			}
			tt.change(t, p)
			before := c.Hashed(p)
			s, err := c.Sum(ctx, p)
			if err != nil || s.SHA256 != tt.wantSum {
				t.Fatalf("second Sum = %+v, %v; want %s", s, err, tt.wantSum)
			}
			if got := c.Hashed(p) - before; got != tt.wantHashed {
				t.Errorf("second Sum hashed %d bytes, want %d", got, tt.wantHashed)
			}
		})
	}
}

func TestCacheFreshFileNotRemembered(t *testing.T) {
	p := oldFile(t, "fresh")
	c := NewCache()
	// The hash starts the moment the file last changed.
	c.now = func() time.Time {
		st, _ := statPath(p)
		return st.newest()
	}
	for range 2 {
		if _, err := c.Sum(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Hashed(p); got != 10 {
		t.Errorf("a file changed moments ago was hashed %d bytes over two Sums, want 10 (both)", got)
	}
}

func TestCacheRecord(t *testing.T) {
	p := oldFile(t, "built")
	link := p + "-published"
	if err := os.Link(p, link); err != nil {
		t.Fatal(err)
	}
	c := NewCache()
	want := Sum{SHA256: sumOf([]byte("built")), Size: 5}
	if err := c.Record(p, Sum{SHA256: want.SHA256, Size: 99}); err == nil {
		t.Error("Record accepted a size the file does not have")
	}
	if err := c.Record(p, want); err != nil {
		t.Fatal(err)
	}
	// A hard link is the same file: what is known of one is known of both.
	if s, err := c.Sum(context.Background(), link); err != nil || s != want {
		t.Errorf("Sum(link) = %+v, %v; want %+v", s, err, want)
	}
	f, err := os.Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := c.VerifyOpen(context.Background(), link, f, sumOf([]byte("other"))); err == nil {
		t.Error("VerifyOpen accepted a wrong digest")
	}
	if got := c.Hashed(link); got != 0 {
		t.Errorf("recorded file hashed %d bytes, want 0", got)
	}
}

// endless is a file that never ends, as a reader of a huge binary sees
// one for as long as it hashes.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	e.read += int64(len(p))
	return len(p), nil
}

// TestReaderStopsWhenCancelled hashes without end and cancels: the hash
// must stop within a chunk or so, not run on to the end of the file.
func TestReaderStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := &endless{}
	done := make(chan error, 1)
	go func() {
		_, err := Reader(ctx, r)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Reader = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Reader ran on after the cancel")
	}
	if r.read == 0 {
		t.Error("nothing was hashed before the cancel: the test shows nothing")
	}
}

// TestStamp checks that a file's stamp stays while it is left alone and
// moves when it is rewritten in place or replaced by a copy.
func TestStamp(t *testing.T) {
	p := oldFile(t, "content")
	stamp := func() string {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return Stamp(fi)
	}
	s := stamp()
	if s == "" {
		t.Skip("this system gives no file identity")
	}
	if stamp() != s {
		t.Error("the stamp of an untouched file moved")
	}
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(p, []byte("CONTENT"), 0o755); err != nil {
		t.Fatal(err)
	}
	rewritten := stamp()
	if rewritten == s {
		t.Error("rewriting the file in place left its stamp")
	}
	cp := p + ".copy"
	if err := os.WriteFile(cp, []byte("CONTENT"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cp, p); err != nil {
		t.Fatal(err)
	}
	if stamp() == rewritten {
		t.Error("replacing the file by a copy left its stamp")
	}
}

// TestStillIs: a file read on the strength of a digest known earlier is
// still that content after a new hard link or a chmod, which move its
// change time as a rewrite does; not after a rewrite.
func TestStillIs(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, path string)
		want   bool
		hashed int64
	}{
		{"untouched", func(*testing.T, string) {}, true, 0},
		{"linked", func(t *testing.T, p string) {
			if err := os.Link(p, p+".link"); err != nil {
				t.Fatal(err)
			}
		}, true, 8},
		{"chmod", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, true, 8},
		{"rewritten, same size", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("X"), 0); err != nil {
				t.Fatal(err)
			}
		}, false, 8},
		{"grown", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
		}, false, 12},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := oldFile(t, "worker-1")
			c := ageCache(NewCache())
			ctx := context.Background()
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, err := c.Sum(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Known(p, f); !ok {
				t.Fatal("the cache does not know the file it hashed")
			}
			tt.change(t, p)
			before := c.Hashed(p)
			got, err := c.StillIs(ctx, p, f, want)
			if err != nil || got != tt.want {
				t.Errorf("StillIs = %v, %v; want %v", got, err, tt.want)
			}
			if n := c.Hashed(p) - before; n != tt.hashed {
				t.Errorf("StillIs hashed %d bytes, want %d", n, tt.hashed)
			}
		})
	}
}

package proc

import (
	"os"
	"path/filepath"
	"strings"
)

// lockName is the file in a temporary directory whose lock its owner holds
// for as long as the directory is in use.
const lockName = ".owner"

// TempDir is a temporary directory owned by this process.
type TempDir struct {
	Path string
	lock *os.File
}

// MkdirTemp creates a private directory in the system's temporary
// directory, as os.MkdirTemp does, and marks it as this process's for as
// long as it runs: Sweep, in any later process, removes it once this
// process is gone, should nothing else have.
func MkdirTemp(pattern string) (*TempDir, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := lockFile(f, true); err != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return &TempDir{Path: dir, lock: f}, nil
}

// Release gives the directory up; it does not remove it.
func (d *TempDir) Release() {
	if d != nil && d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}

// Sweep removes the directories matching prefix* in the system's temporary
// directory that MkdirTemp made for processes now gone: a safety net for
// what a process killed with its guard left behind. Directories of live
// processes, of other users and without the mark are left alone.
func Sweep(prefix string) (removed []string) {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		// The owner holds the lock while it lives; the kernel drops it when
		// the owner dies.
		if lockFile(f, false) == nil {
			if os.RemoveAll(dir) == nil {
				removed = append(removed, dir)
			}
		}
		f.Close()
	}
	return removed
}

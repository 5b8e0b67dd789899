// Package atomicfile writes files so that readers see the old content or
// the new, never a part: under a temporary name beside the file, synced,
// then renamed into place.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes data to path with perm, atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes what fill writes to path with perm, atomically: for
// content too large to hold in memory, such as an image tarball. On any
// error, from fill or the file system, path is left as it was and the
// temporary file is removed.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	_, err := write(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*", perm, func(w io.Writer) (string, error) {
		return filepath.Base(path), fill(w)
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteAs writes what fill writes to a file in dir with perm, atomically,
// under the name fill returns when it is done: for files named by their
// content, such as by its digest. It returns the file's path.
func WriteAs(dir string, perm os.FileMode, fill func(io.Writer) (string, error)) (string, error) {
	p, err := write(dir, ".tmp-*", perm, fill)
	if err != nil {
		return "", fmt.Errorf("writing in %s: %w", dir, err)
	}
	return p, nil
}

func write(dir, pattern string, perm os.FileMode, fill func(io.Writer) (string, error)) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	name, err := fill(f)
	if err == nil && (name == "" || filepath.Base(name) != name) {
		err = fmt.Errorf("invalid file name %q", name)
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	// Without the sync, a crash soon after the rename can leave the name
	// on an empty or partial file on file systems that order the rename
	// before the data.
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	path := filepath.Join(dir, name)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return path, nil
}

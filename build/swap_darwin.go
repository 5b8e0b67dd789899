package build

import (
	"errors"

	"golang.org/x/sys/unix"
)

// exchange swaps two paths in one step, so that dir never goes missing
// between the old content and the new. ok is false where the file system
// cannot.
func exchange(a, b string) (ok bool, err error) {
	err = unix.RenamexNp(a, b, unix.RENAME_SWAP)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) {
		return false, nil
	}
	return true, err
}

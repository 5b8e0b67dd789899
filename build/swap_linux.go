package build

import (
	"errors"

	"golang.org/x/sys/unix"
)

// exchange swaps two paths in one step, so that dir never goes missing
// between the old content and the new. ok is false where the file system
// cannot.
func exchange(a, b string) (ok bool, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	return true, err
}

//go:build !linux && !darwin

package build

// exchange reports that this system cannot swap two paths in one step.
func exchange(a, b string) (bool, error) { return false, nil }

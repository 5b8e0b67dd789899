// Package testenv is how a test that needs something of the machine (root,
// qemu-user, a tool) does without it: it skips where the thing is missing,
// and fails instead where the test script has promised it by setting
// BEAMCTL_REQUIRE_<NEED>, so that CI never passes by skipping.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Need is something of the machine a test needs.
type Need string

const (
	// Root is root's privileges: mounts, chroot, acting as another user.
	Root Need = "ROOT"
	// Qemu is qemu-user-static and its binfmt_misc registration.
	Qemu Need = "QEMU"
	// Tools are the programs scripts/test installs: GNU time, ss, setpriv,
	// gcc, Graphviz's dot, rsvg-convert.
	Tools Need = "TOOLS"
)

// Skip skips the test for want of need, with the reason, or fails it when
// BEAMCTL_REQUIRE_<need> is set.
func Skip(t testing.TB, need Need, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required(need) {
		t.Fatalf("%s (BEAMCTL_REQUIRE_%s is set)", msg, need)
	}
	t.Skip(msg)
}

// Required reports whether the test script promised need.
func Required(need Need) bool {
	_, ok := os.LookupEnv("BEAMCTL_REQUIRE_" + string(need))
	return ok
}

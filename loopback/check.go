package loopback

import (
	"runtime"
	"strings"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/internal/check"
)

// CheckTarget says how this machine runs workers built for goos/goarch:
// natively, through qemu-user, or not at all (with how to fix it).
func CheckTarget(goos, goarch string) check.Result {
	name := "target " + goos + "/" + goarch
	emu, err := boot.Emulator(goos, goarch)
	switch {
	case err != nil:
		reason, fix, _ := strings.Cut(err.Error(), ": ")
		return check.Failure(name, reason, fix)
	case goos == runtime.GOOS && goarch == runtime.GOARCH:
		return check.Pass(name, "runs natively here")
	case len(emu) == 0:
		return check.Pass(name, "runs here through the kernel's binfmt_misc handler (qemu-user)")
	}
	return check.Pass(name, "runs here under "+emu[0])
}

package loopback

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/wrap"
)

// CheckTarget says how this machine runs workers built for goos/goarch:
// natively, through qemu-user, or not at all (with how to fix it).
func CheckTarget(goos, goarch string) check.Result {
	name := "target " + goos + "/" + goarch
	emu, err := wrap.Emulator(goos, goarch)
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

// CheckDelve finds Delve (dlv at path, else on PATH) and compares its
// version with the one beamctl is tested with: an older Delve may not read
// binaries of the toolchain's Go.
func CheckDelve(ctx context.Context, path string) check.Result {
	const name = "delve"
	dlv, err := wrap.FindDelve(path)
	if err != nil {
		p, _ := problem.As(err)
		return check.Failure(name, p.Reason, p.Fix)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dlv, "version").Output()
	if err != nil {
		return check.Failure(name, dlv+" version failed: "+err.Error(), "reinstall it with `"+wrap.DelveInstall+"`")
	}
	v := ""
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "Version:"); ok {
			v = "v" + strings.TrimPrefix(strings.TrimSpace(s), "v")
		}
	}
	switch {
	case !semver.IsValid(v):
		return check.Warning(name, dlv+" reports no version", "install the tested one with `"+wrap.DelveInstall+"`")
	case semver.Compare(v, wrap.DelveVersion) < 0:
		return check.Warning(name, fmt.Sprintf("%s is %s, older than %s, which beamctl is tested with; it may not read binaries of %s", dlv, v, wrap.DelveVersion, runtime.Version()),
			"install it with `"+wrap.DelveInstall+"`")
	}
	return check.Pass(name, dlv+" "+v)
}

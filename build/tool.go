package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Tool builds a Go program at a pinned version (pkg@version, as go install
// takes it) for platform p, and returns the binary's path. Worker images
// built for debugging carry Delve for their platform this way. Builds are
// kept under cacheDir by package, version and platform; the modules come
// from the module cache or the proxy, as go install fetches them.
func Tool(ctx context.Context, tc *Toolchain, pkg, version string, p Platform, cacheDir string) (string, error) {
	name := filepath.Base(pkg)
	dir := filepath.Join(cacheDir, "tools", strings.ReplaceAll(pkg, "/", "_")+"@"+version, p.Suffix())
	out := filepath.Join(dir, name)
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the tool cache: %w", err)
	}
	gomodcache, err := tc.output(ctx, "", nil, "env", "GOMODCACHE")
	if err != nil {
		return "", err
	}
	// go install cross-compiles only into GOPATH/bin/GOOS_GOARCH: a GOPATH of
	// its own keeps the user's bin untouched, the module cache is shared.
	gopath, err := os.MkdirTemp(dir, ".gopath-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(gopath)
	env := append(p.Env(), "GOPATH="+gopath, "GOMODCACHE="+strings.TrimSpace(string(gomodcache)), "GOBIN=", "CGO_ENABLED=0", "GOFLAGS=-trimpath")
	if out, err := tc.build(ctx, "", env, dir, "install", pkg+"@"+version); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// go's complaint is its last line, after any "go: downloading".
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return "", fmt.Errorf("building %s@%s for %s: %s (%w)", pkg, version, p, lines[len(lines)-1], err)
	}
	built := filepath.Join(gopath, "bin", name)
	if p != HostPlatform() {
		built = filepath.Join(gopath, "bin", p.OS+"_"+p.Arch, name)
	}
	if err := os.Rename(built, out); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("go install left no %s for %s in %s", name, p, filepath.Dir(built))
		}
		return "", err
	}
	return out, nil
}

package build

import (
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// TestSDKRefusals keeps sdkRefuses true of the Beam SDK in go.mod: each
// refused platform's named package fails to type-check for it, and the
// same package compiles for targets that are accepted, so that a Beam
// release which fixes one shows here as a refusal to drop. Every target
// a worker is built for in the tests proves the acceptance in full.
func TestSDKRefusals(t *testing.T) {
	t.Parallel()
	const (
		syscallx = "github.com/apache/beam/sdks/v2/go/pkg/beam/util/syscallx"
		sockets  = "github.com/docker/go-connections/sockets"
	)
	// Both are in every worker: beamx is how a pipeline starts.
	deps, _ := loadFor(t, "linux", "amd64", "github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx", false)
	for _, p := range []string{syscallx, sockets} {
		if !slices.Contains(deps, p) {
			t.Errorf("beamx no longer imports %s: sdkRefuses's reason for it is stale", p)
		}
	}
	for _, tc := range []struct {
		target, pkg, wantErr string
		refused              bool
	}{
		{"linux/386", syscallx, "info.Totalram", true},
		{"linux/arm", syscallx, "info.Totalram", true},
		{"linux/mipsle", syscallx, "info.Totalram", true},
		{"android/arm", syscallx, "info.Totalram", true},
		{"js/wasm", sockets, "RawSockaddrUnix", true},
		{"wasip1/wasm", sockets, "RawSockaddrUnix", true},
		{"plan9/amd64", sockets, "RawSockaddrUnix", true},
		{"linux/amd64", syscallx, "", false},
		{"linux/s390x", syscallx, "", false},
		{"windows/386", syscallx, "", false},
		{"freebsd/arm", syscallx, "", false},
		{"windows/amd64", sockets, "", false},
	} {
		t.Run(strings.ReplaceAll(tc.target, "/", "-"), func(t *testing.T) {
			t.Parallel()
			os_, arch, _ := strings.Cut(tc.target, "/")
			p := Platform{OS: os_, Arch: arch}
			if SDKBuilds(p) == tc.refused {
				t.Errorf("SDKBuilds(%s) = %v, want %v", p, !tc.refused, !tc.refused)
			}
			_, errs := loadFor(t, os_, arch, tc.pkg, true)
			switch {
			case tc.refused && !strings.Contains(strings.Join(errs, "\n"), tc.wantErr):
				t.Errorf("%s type-checks for %s without %q (errors: %q): the SDK may now build for it; drop its refusal", tc.pkg, p, tc.wantErr, errs)
			case !tc.refused && len(errs) > 0:
				t.Errorf("%s does not type-check for %s, which is accepted: %q", tc.pkg, p, errs)
			}
		})
	}
}

// loadFor loads pkg and its dependencies from source for goos/goarch,
// type-checking them when check is set (nothing is compiled), and returns
// their import paths and the type errors found.
func loadFor(t *testing.T, goos, goarch, pkg string, check bool) (deps, errs []string) {
	t.Helper()
	mode := packages.NeedName | packages.NeedImports | packages.NeedDeps
	if check {
		mode |= packages.NeedTypes | packages.NeedSyntax
	}
	pkgs, err := packages.Load(&packages.Config{Mode: mode,
		Env: append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")}, pkg)
	if err != nil {
		t.Fatal(err)
	}
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		deps = append(deps, p.PkgPath)
		for _, e := range p.Errors {
			errs = append(errs, e.Msg)
		}
	})
	return deps, errs
}

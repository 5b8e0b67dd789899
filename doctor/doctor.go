// Package doctor runs beamctl's health checks up front, each owned by the
// package whose work it concerns, so a broken toolchain, an unrunnable
// target, the wrong endpoint or a registry without access shows before a
// build or a job rather than as a late failure in the layer below.
package doctor

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core"

	"github.com/beamctl/beamctl/attest"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/embeddedrunner"
	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/loopback"
	"github.com/beamctl/beamctl/stage/image"
	"github.com/beamctl/beamctl/submit"
)

// Options say what to check beyond the toolchain and this machine.
type Options struct {
	// Package is the pipeline to check, relative to WorkDir; empty skips
	// the pipeline's checks.
	Package, WorkDir string
	// Targets are the worker platforms to check, as given (OS/ARCH, host).
	Targets []string
	// Endpoint, if set, is a job server to reach with Dial.
	Endpoint string
	Dial     submit.DialOptions
	// Image, if set, is a repository to check push access to.
	Image            string
	InsecureRegistry bool
	// VerifyKey and SignKey, if set, are keys to load (SignKey with
	// SignPassword); with Image, the registry is also checked for where
	// it keeps signatures.
	VerifyKey, SignKey string
	SignPassword       []byte
	// CacheDir is beamctl's cache directory; default the user cache's.
	CacheDir string
	// Env is the environment go runs with; nil is this process's.
	Env []string
	// Transport carries registry requests; default go-containerregistry's.
	Transport http.RoundTripper
	// CGO, if set, checks a C compiler for each target and this machine,
	// as a build with cgo would choose it, CC naming some.
	CGO build.CGOMode
	CC  map[build.Platform]string
	// Extra are checks of the caller's own (e.g. the debugger).
	Extra []func(context.Context) check.Result
}

// Run runs the checks and returns their results in order.
func Run(ctx context.Context, o Options) []check.Result {
	var out []check.Result
	tcRes, tc := build.CheckToolchain(ctx, o.Env)
	out = append(out, tcRes)
	if tc != nil && o.Package != "" {
		pipeline := build.CheckPipeline(ctx, tc, o.WorkDir, o.Package, "v"+core.SdkVersion)
		out = append(out, pipeline...)
		if !Failed(pipeline) {
			out = append(out, build.CheckVet(ctx, tc, o.WorkDir, o.Package, o.CacheDir))
		}
	}
	var checked []build.Platform
	for _, t := range o.Targets {
		if tc == nil {
			break
		}
		p, err := build.ParseTarget(t, tc.Platforms)
		if err != nil {
			// The same words as build's refusal: what is wrong and the
			// target to give instead.
			fix := "give OS/ARCH as go tool dist list names it"
			var te *build.TargetError
			if errors.As(err, &te) {
				fix = te.Fix
			}
			out = append(out, check.Failure("target "+t, err.Error(), fix))
			continue
		}
		// host and its OS/ARCH are one target, as for build.
		base := build.Platform{OS: p.OS, Arch: p.Arch}
		if slices.Contains(checked, base) {
			continue
		}
		checked = append(checked, base)
		out = append(out, loopback.CheckTarget(p.OS, p.Arch))
		if o.CGO != build.CGOOff {
			out = append(out, build.CheckCompiler(p, o.CGO, o.CC, tc.Environ()))
		}
	}
	if host := build.HostPlatform(); tc != nil && o.CGO != build.CGOOff && !slices.Contains(checked, host) {
		// The launcher is built with cgo too.
		out = append(out, build.CheckCompiler(host, o.CGO, o.CC, tc.Environ()))
	}
	out = append(out, build.CheckCacheDir(o.CacheDir))
	if o.Endpoint != "" {
		out = append(out, submit.CheckEndpoint(ctx, o.Endpoint, o.Dial))
	}
	if o.Image != "" {
		out = append(out, image.CheckRegistry(ctx, o.Image, o.InsecureRegistry, o.Transport)...)
		if o.VerifyKey != "" || o.SignKey != "" {
			out = append(out, image.CheckReferrers(ctx, o.Image, o.InsecureRegistry, o.Transport))
		}
	}
	if o.VerifyKey != "" {
		out = append(out, attest.CheckPublicKey(o.VerifyKey))
	}
	if o.SignKey != "" {
		out = append(out, attest.CheckKey(o.SignKey, o.SignPassword))
	}
	for _, f := range o.Extra {
		out = append(out, f(ctx))
	}
	out = append(out, embeddedrunner.Check(ctx))
	return out
}

// Failed reports whether any check failed; warnings do not fail.
func Failed(rs []check.Result) bool {
	for _, r := range rs {
		if r.Status == check.Fail {
			return true
		}
	}
	return false
}

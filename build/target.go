package build

import (
	"cmp"
	"errors"
	"fmt"
	"go/types"
	"runtime"
	"slices"
	"strings"

	"github.com/beamctl/beamctl/internal/suggest"
)

// Platform is a GOOS/GOARCH pair with an optional microarchitecture
// variant, written like an OCI platform: linux/arm64, linux/arm/v7,
// linux/amd64/v3.
type Platform struct {
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	Variant string `json:"variant,omitempty"`
}

// HostPlatform is the machine beamctl runs on.
func HostPlatform() Platform { return Platform{OS: runtime.GOOS, Arch: runtime.GOARCH} }

func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Suffix is the platform as it appears in file names: linux-arm-v7.
func (p Platform) Suffix() string { return strings.ReplaceAll(p.String(), "/", "-") }

// Env is the toolchain environment that selects this platform.
func (p Platform) Env() []string {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch}
	if p.Variant == "" {
		return env
	}
	switch p.Arch {
	case "arm":
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	case "amd64":
		env = append(env, "GOAMD64="+p.Variant)
	}
	// arm64/v8 is the baseline, so it needs nothing.
	return env
}

// variants lists the variants each architecture accepts. arm64/v8 is
// accepted because OCI platforms (docker, registries) spell arm64 that way.
var variants = map[string][]string{
	"arm":   {"v5", "v6", "v7"},
	"amd64": {"v1", "v2", "v3", "v4"},
	"arm64": {"v8"},
}

// Variants are the variants a target of arch may name, e.g. v7 for arm.
func Variants(arch string) []string { return slices.Clone(variants[arch]) }

// ParseTargets parses --target values; each may hold several targets
// separated by commas. "host" names this machine. Duplicates are dropped,
// keeping the first occurrence's order. known is the toolchain's platform
// list (go tool dist list).
func ParseTargets(values []string, known []Platform) ([]Platform, error) {
	var out []Platform
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			p, err := ParseTarget(strings.TrimSpace(s), known)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// ParseTarget parses one OS/ARCH[/VARIANT] target.
func ParseTarget(s string, known []Platform) (Platform, error) {
	if s == "host" {
		return HostPlatform(), nil
	}
	if s == "" {
		return Platform{}, &TargetError{Target: s, Reason: "is empty", Fix: "give OS/ARCH, e.g. linux/amd64"}
	}
	if lower := strings.ToLower(s); lower != s {
		// Go's platform names are lower case; LINUX/AMD64 is no typo.
		var te *TargetError
		switch _, err := ParseTarget(lower, known); {
		case err == nil:
			return Platform{}, &TargetError{Target: s, Reason: "is not in lower case", Fix: "did you mean " + lower + "?"}
		case errors.As(err, &te) && te.sdk:
			// Lower case would not help: say why at once.
			te.Target = s
			return Platform{}, te
		}
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		suggestions := closest(s, known, 3)
		if len(parts) == 1 {
			// A bare OS most likely lacks the architecture of a runner
			// machine, so offer the two that runners use.
			var common []string
			for _, arch := range []string{"amd64", "arm64"} {
				if p := (Platform{OS: s, Arch: arch}); slices.Contains(known, p) {
					common = append(common, p.String())
				}
			}
			if len(common) > 0 {
				suggestions = common
			}
		}
		return Platform{}, &TargetError{Target: s, Reason: "is not OS/ARCH[/VARIANT]",
			Fix: "did you mean " + orList(suggestions) + "?"}
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	base := Platform{OS: p.OS, Arch: p.Arch}
	if !slices.Contains(known, base) {
		return Platform{}, &TargetError{Target: s, Reason: "is not a platform this Go toolchain can build",
			Fix: "did you mean " + orList(closest(base.String(), known, 3)) + "?"}
	}
	if reason, fix := sdkRefuses(base, known); reason != "" {
		return Platform{}, &TargetError{Target: s, Reason: reason, Fix: fix, sdk: true}
	}
	if p.Variant != "" {
		valid := variants[p.Arch]
		if !slices.Contains(valid, p.Variant) {
			fix := p.Arch + " takes no variant: use " + base.String()
			if len(valid) > 0 {
				var with []string
				for _, v := range valid {
					with = append(with, base.String()+"/"+v)
				}
				fix = "use " + orList(with) + " or " + base.String()
			}
			return Platform{}, &TargetError{Target: s, Reason: "has an unknown variant " + p.Variant, Fix: fix}
		}
		if p.Arch == "arm64" {
			p.Variant = ""
		}
	}
	return p, nil
}

// SDKBuilds reports whether the Beam Go SDK compiles for p, which the
// toolchain may build for all the same.
func SDKBuilds(p Platform) bool {
	reason, _ := sdkRefuses(p, nil)
	return reason == ""
}

// wide is the 64-bit architecture a 32-bit one's users move to.
var wide = map[string]string{"386": "amd64", "arm": "arm64", "mips": "mips64", "mipsle": "mips64le"}

// sdkRefuses says why the Beam Go SDK does not compile for p, and which
// target of known to use instead; "" when it does. The rules are what
// compiling the SDK's harness for every platform of go tool dist list
// fails on (TestSDKRefusals keeps them true of the SDK in go.mod), so
// that a target the build could only fail on is refused before it spends
// minutes compiling:
//   - 32-bit Linux (android too): util/syscallx returns Sysinfo_t's
//     Totalram, a uint32 there, as a uint64. Elsewhere syscallx has no
//     such code, and windows/386 or freebsd/arm compile.
//   - js, wasip1 and plan9: github.com/docker/go-connections/sockets,
//     which the SDK imports, uses Unix sockets those lack.
func sdkRefuses(p Platform, known []Platform) (reason, fix string) {
	switch {
	case (p.OS == "linux" || p.OS == "android") && is32Bit(p.Arch):
		arch := cmp.Or(wide[p.Arch], "amd64")
		alt := "linux/amd64"
		for _, c := range []Platform{{OS: p.OS, Arch: arch}, {OS: "linux", Arch: arch}} {
			if known == nil || slices.Contains(known, c) {
				alt = c.String()
				break
			}
		}
		return "is 32-bit, and the Beam Go SDK builds for 64-bit Linux only", "use " + alt
	case p.OS == "js" || p.OS == "wasip1" || p.OS == "plan9":
		return "is not a platform the Beam Go SDK builds for: " + p.OS + " lacks the Unix sockets it uses", "use linux/amd64 or linux/arm64"
	}
	return "", ""
}

// is32Bit reports whether arch has 32-bit pointers, as the gc compiler
// lays them out.
func is32Bit(arch string) bool {
	sizes := types.SizesFor("gc", arch)
	return sizes != nil && sizes.Sizeof(types.Typ[types.Uintptr]) == 4
}

// TargetError is a target that cannot be built.
type TargetError struct {
	Target, Reason, Fix string
	// sdk: the toolchain builds for the target, the Beam SDK does not.
	sdk bool
}

// SettingKey says the target is the setting at fault.
func (e *TargetError) SettingKey() string { return "Target" }

func (e *TargetError) Error() string {
	return fmt.Sprintf("target %q %s: %s", e.Target, e.Reason, e.Fix)
}

// closest returns the n known platforms nearest to s by edit distance,
// preferring those that share the OS, so "linux/sparc" suggests Linux ports.
func closest(s string, known []Platform, n int) []string {
	os, _, _ := strings.Cut(s, "/")
	names := make([]string, 0, len(known))
	for _, k := range known {
		if n := k.String(); SDKBuilds(k) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return suggest.Nearest(s, names, n, func(s, c string) int {
		d := suggest.Distance(s, c)
		if !strings.HasPrefix(c, os+"/") {
			d += 4
		}
		return d
	})
}

func orList(s []string) string {
	switch len(s) {
	case 0:
		return "linux/amd64"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

package build

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// known is a fixed platform list, so the tests do not depend on the
// installed toolchain.
var known = []Platform{
	{"linux", "amd64", ""}, {"linux", "arm64", ""}, {"linux", "arm", ""}, {"linux", "386", ""},
	{"linux", "s390x", ""}, {"linux", "ppc64le", ""}, {"linux", "riscv64", ""},
	{"darwin", "arm64", ""}, {"darwin", "amd64", ""}, {"windows", "amd64", ""}, {"windows", "arm64", ""},
	{"windows", "386", ""}, {"freebsd", "arm", ""}, {"linux", "mipsle", ""}, {"android", "arm", ""}, {"android", "arm64", ""},
	{"js", "wasm", ""},
	{runtime.GOOS, runtime.GOARCH, ""},
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Platform
		wantErr string
	}{
		{in: "linux/amd64", want: Platform{"linux", "amd64", ""}},
		{in: "linux/arm64", want: Platform{"linux", "arm64", ""}},
		{in: "linux/arm64/v8", want: Platform{"linux", "arm64", ""}},
		{in: "windows/386", want: Platform{"windows", "386", ""}},
		{in: "freebsd/arm/v7", want: Platform{"freebsd", "arm", "v7"}},
		{in: "linux/arm/v7", wantErr: `target "linux/arm/v7" is 32-bit, and the Beam Go SDK builds for 64-bit Linux only: use linux/arm64`},
		{in: "linux/386", wantErr: `target "linux/386" is 32-bit, and the Beam Go SDK builds for 64-bit Linux only: use linux/amd64`},
		{in: "linux/mipsle", wantErr: `use linux/amd64`},
		{in: "android/arm", wantErr: `use android/arm64`},
		{in: "Linux/386", wantErr: `target "Linux/386" is 32-bit`},
		{in: "js/wasm", wantErr: `target "js/wasm" is not a platform the Beam Go SDK builds for`},
		{in: "linux/amd64/v3", want: Platform{"linux", "amd64", "v3"}},
		{in: "host", want: HostPlatform()},
		{in: "LINUX/AMD64", wantErr: `target "LINUX/AMD64" is not in lower case: did you mean linux/amd64?`},
		{in: "Linux/amd64/V3", wantErr: `did you mean linux/amd64/v3?`},
		{in: "linux", wantErr: `target "linux" is not OS/ARCH[/VARIANT]: did you mean linux/amd64 or linux/arm64?`},
		{in: "linux/sparc", wantErr: `target "linux/sparc" is not a platform this Go toolchain can build: did you mean linux/s390x, linux/amd64 or linux/arm64?`},
		{in: "linux/arm64/v9", wantErr: `target "linux/arm64/v9" has an unknown variant v9: use linux/arm64/v8 or linux/arm64`},
		{in: "windows/arm/v7", wantErr: `target "windows/arm/v7" is not a platform this Go toolchain can build: did you mean windows/arm64`},
		{in: "linux/amd64/v9", wantErr: `use linux/amd64/v1, linux/amd64/v2, linux/amd64/v3 or linux/amd64/v4 or linux/amd64`},
		{in: "windows/386/v2", wantErr: `386 takes no variant: use windows/386`},
		{in: "", wantErr: `target "" is empty`},
		{in: "linux/", wantErr: `is not OS/ARCH[/VARIANT]`},
		{in: "a/b/c/d", wantErr: `is not OS/ARCH[/VARIANT]`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in, known)
			if tc.wantErr != "" {
				var te *TargetError
				if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTarget(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseTarget(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets([]string{"linux/amd64,linux/arm64", " linux/arm64 ", "linux/amd64/v3"}, known)
	if err != nil {
		t.Fatal(err)
	}
	want := []Platform{{"linux", "amd64", ""}, {"linux", "arm64", ""}, {"linux", "amd64", "v3"}}
	if !slices.Equal(got, want) {
		t.Fatalf("ParseTargets = %v, want %v", got, want)
	}
	if _, err := ParseTargets([]string{"linux/amd64,linux/sparc"}, known); err == nil {
		t.Fatal("ParseTargets accepted linux/sparc")
	}
}

func TestPlatformEnvAndSuffix(t *testing.T) {
	for _, tc := range []struct {
		p      Platform
		suffix string
		env    []string
	}{
		{Platform{"linux", "amd64", ""}, "linux-amd64", []string{"GOOS=linux", "GOARCH=amd64"}},
		{Platform{"linux", "arm", "v7"}, "linux-arm-v7", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}},
		{Platform{"linux", "amd64", "v3"}, "linux-amd64-v3", []string{"GOOS=linux", "GOARCH=amd64", "GOAMD64=v3"}},
	} {
		if got := tc.p.Suffix(); got != tc.suffix {
			t.Errorf("%v.Suffix() = %q, want %q", tc.p, got, tc.suffix)
		}
		if got := tc.p.Env(); !slices.Equal(got, tc.env) {
			t.Errorf("%v.Env() = %q, want %q", tc.p, got, tc.env)
		}
	}
}

// FuzzParseTarget checks that any input either parses to a platform that
// round-trips through its own string form, or fails with a TargetError.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "linux", "linux/arm64/v9", "host", "//", "a/b/c/d", "linux/amd64,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseTarget(s, known)
		if err != nil {
			var te *TargetError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTarget(%q): error %v is not a TargetError", s, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseTarget(%q): error spans lines: %q", s, err)
			}
			return
		}
		if !slices.Contains(known, Platform{OS: p.OS, Arch: p.Arch}) {
			t.Fatalf("ParseTarget(%q) = %v, not a known platform", s, p)
		}
		again, err := ParseTarget(p.String(), known)
		if err != nil || again != p {
			t.Fatalf("ParseTarget(%q) = %v, but its string %q parses to %v, %v", s, p, p.String(), again, err)
		}
	})
}

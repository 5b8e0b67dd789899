package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beamctl/beamctl/internal/testenv"
)

// TestRunBeamWordcountOn64BitLinux runs Beam's own wordcount, from a module
// of its own as a user's pipeline would be, on the embedded runner with a
// worker for each 64-bit Linux architecture qemu-user emulates here,
// big-endian s390x included: each worker, the host's too, must count what
// an independent count of the input says.
func TestRunBeamWordcountOn64BitLinux(t *testing.T) {
	t.Parallel()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the emulated targets are chosen for an amd64 or arm64 host")
	}
	mod := abs(t, "../../testdata/beamexamples")
	input := abs(t, wordcountInput)
	want := countBeamWords(t, input)
	for _, tc := range []struct{ target, qemu string }{
		{"host", ""},
		{"linux/ppc64le", "qemu-ppc64le-static"},
		{"linux/s390x", "qemu-s390x-static"},
		{"linux/riscv64", "qemu-riscv64-static"},
	} {
		t.Run(strings.ReplaceAll(tc.target, "/", "-"), func(t *testing.T) {
			t.Parallel()
			if tc.qemu != "" {
				if _, err := exec.LookPath(tc.qemu); err != nil {
					testenv.Skip(t, testenv.Qemu, "%s is not installed", tc.qemu)
				}
			}
			out := filepath.Join(t.TempDir(), "counts.txt")
			// A cold build of the SDK for a new architecture takes minutes
			// here, beside the others.
			r := beamctlProcessIn(t, mod, 15*time.Minute, "run", "github.com/apache/beam/sdks/v2/go/examples/wordcount",
				"--target", tc.target, "--", "--input="+input, "--output="+out)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			got := readSorted(t, out)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("counts differ from an independent count:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// countBeamWords counts path's words as Beam's wordcount example does:
// case-sensitive runs of ASCII letters with an optional 'x suffix.
func countBeamWords(t *testing.T, path string) []string {
	t.Helper()
	return countMatches(t, path, `[a-zA-Z]+('[a-z])?`, func(w string) string { return w })
}

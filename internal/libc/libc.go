// Package libc reads what a Linux executable needs of the C library it
// runs with, its ELF interpreter and the newest GLIBC_ symbol version it
// imports, and what a C library provides, so that a dynamically linked
// worker is put only on an image whose glibc can load it.
package libc

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Needs is what an executable needs to start.
type Needs struct {
	// Interpreter is the dynamic loader the kernel starts the executable
	// with (PT_INTERP), "" for a statically linked one.
	Interpreter string
	// GLIBC is the newest glibc symbol version it imports, as "2.34";
	// "" when it imports none.
	GLIBC string
}

// Static reports whether the executable needs no C library where it runs.
func (n Needs) Static() bool { return n.Interpreter == "" }

// ErrNotELF is a file that is not an ELF executable, such as a Mach-O
// binary: it has no Linux C library needs to read.
var ErrNotELF = errors.New("not an ELF file")

// ReadFile reads the needs of the executable at path.
func ReadFile(path string) (Needs, error) {
	f, err := os.Open(path)
	if err != nil {
		return Needs{}, err
	}
	defer f.Close()
	return Read(f)
}

// Read reads the needs of the ELF executable r.
func Read(r io.ReaderAt) (Needs, error) {
	f, err := open(r)
	if err != nil {
		return Needs{}, err
	}
	var n Needs
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return Needs{}, fmt.Errorf("reading the ELF interpreter: %w", err)
		}
		n.Interpreter = strings.TrimRight(string(b), "\x00")
	}
	if !hasSection(f, elf.SHT_GNU_VERNEED) {
		return n, nil
	}
	needs, err := f.DynamicVersionNeeds()
	if err != nil {
		return Needs{}, fmt.Errorf("reading the ELF version needs: %w", err)
	}
	for _, lib := range needs {
		for _, d := range lib.Needs {
			if v, ok := glibcVersion(d.Dep); ok && Compare(v, n.GLIBC) > 0 {
				n.GLIBC = v
			}
		}
	}
	return n, nil
}

// Provides is the newest glibc symbol version the shared library r
// defines: a libc.so.6 that defines GLIBC_2.36 loads executables that need
// up to 2.36. It is "" for a library that defines none.
func Provides(r io.ReaderAt) (string, error) {
	f, err := open(r)
	if err != nil {
		return "", err
	}
	if !hasSection(f, elf.SHT_GNU_VERDEF) {
		return "", nil
	}
	defs, err := f.DynamicVersions()
	if err != nil {
		return "", fmt.Errorf("reading the ELF version definitions: %w", err)
	}
	newest := ""
	for _, d := range defs {
		if v, ok := glibcVersion(d.Name); ok && Compare(v, newest) > 0 {
			newest = v
		}
	}
	return newest, nil
}

func open(r io.ReaderAt) (*elf.File, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, ErrNotELF
		}
		return nil, err
	}
	return f, nil
}

// hasSection reports whether f has a section of type t: a static
// executable has no version sections, which debug/elf reports as an error.
func hasSection(f *elf.File, t elf.SectionType) bool {
	for _, s := range f.Sections {
		if s.Type == t {
			return true
		}
	}
	return false
}

// glibcVersion is the version of a GLIBC_2.34 symbol version name; the
// GLIBC_PRIVATE and GLIBC_ABI_DT_RELR kinds name no release.
func glibcVersion(name string) (string, bool) {
	v, ok := strings.CutPrefix(name, "GLIBC_")
	if !ok || parse(v) == nil {
		return "", false
	}
	return v, true
}

// Compare orders glibc versions as "2.17" < "2.34"; "" is older than any.
func Compare(a, b string) int {
	pa, pb := parse(a), parse(b)
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func parse(v string) []int {
	if v == "" {
		return nil
	}
	var out []int
	for _, f := range strings.Split(v, ".") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// crossArch is how Debian and Ubuntu name an architecture of their Linux
// cross toolchains.
type crossArch struct {
	// triple is the GNU triple: aarch64-linux-gnu-gcc is the compiler,
	// /usr/aarch64-linux-gnu the target's C library.
	triple string
	// debian is the Debian architecture: libc6-arm64-cross is the package
	// of the C library.
	debian string
}

var crossArchs = map[string]crossArch{
	"386":     {"i686-linux-gnu", "i386"},
	"amd64":   {"x86_64-linux-gnu", "amd64"},
	"arm":     {"arm-linux-gnueabihf", "armhf"},
	"arm64":   {"aarch64-linux-gnu", "arm64"},
	"ppc64le": {"powerpc64le-linux-gnu", "ppc64el"},
	"riscv64": {"riscv64-linux-gnu", "riscv64"},
	"s390x":   {"s390x-linux-gnu", "s390x"},
}

// GNUTriple is the GNU triple of goarch's Linux cross toolchain, such as
// aarch64-linux-gnu.
func GNUTriple(goarch string) (string, bool) {
	a, ok := crossArchs[goarch]
	return a.triple, ok
}

// SysrootPackage is the Debian package that installs goarch's C library
// for cross toolchains and qemu-user, such as libc6-arm64-cross.
func SysrootPackage(goarch string) (string, bool) {
	a, ok := crossArchs[goarch]
	return "libc6-" + a.debian + "-cross", ok
}

// Sysroot is where Debian's cross toolchain for goarch keeps the target's
// C library (/usr/aarch64-linux-gnu), if it is installed: qemu-user loads
// a foreign dynamic executable's interpreter and libraries from there.
func Sysroot(goarch string) (string, bool) {
	a, ok := crossArchs[goarch]
	if !ok {
		return "", false
	}
	dir := "/usr/" + a.triple
	if fi, err := os.Stat(dir + "/lib"); err != nil || !fi.IsDir() {
		return "", false
	}
	return dir, true
}

package wrap

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/beamctl/beamctl/internal/libc"
	"github.com/beamctl/beamctl/internal/problem"
)

// binfmtDir is where Linux lists the interpreters it runs foreign binaries
// with.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// qemuArch maps GOARCH to qemu-user's name for the architecture.
var qemuArch = map[string]string{
	"386":      "i386",
	"amd64":    "x86_64",
	"arm":      "arm",
	"arm64":    "aarch64",
	"loong64":  "loongarch64",
	"mips":     "mips",
	"mipsle":   "mipsel",
	"mips64":   "mips64",
	"mips64le": "mips64el",
	"ppc64":    "ppc64",
	"ppc64le":  "ppc64le",
	"riscv64":  "riscv64",
	"s390x":    "s390x",
}

// Emulated runs workers built for this machine as they are and those built
// for another architecture under qemu-user (found by Emulator).
var Emulated Wrapper = WrapperFunc(func(_ context.Context, l *Launch) error {
	if l.OS == "" {
		return nil
	}
	emu, err := Emulator(l.OS, l.Arch)
	if err != nil {
		return err
	}
	if l.OS == runtime.GOOS && l.Arch == runtime.GOARCH {
		return nil
	}
	// A dynamically linked worker needs its platform's loader and C
	// library, which this machine keeps apart from its own.
	sysroot, err := foreignSysroot(l)
	if err != nil {
		return err
	}
	switch {
	case sysroot != "" && emu != nil:
		emu = append(slices.Clip(emu), "-L", sysroot)
	case sysroot != "":
		// The kernel starts qemu-user itself, which reads its
		// sysroot from the environment.
		if l.Env == nil {
			l.Env = map[string]string{}
		}
		l.Env["QEMU_LD_PREFIX"] = sysroot
	}
	l.Argv = append(append([]string(nil), emu...), l.Argv...)
	return nil
})

// foreignSysroot is where qemu-user finds the C library of l's dynamically
// linked foreign binary, "" for a static one.
func foreignSysroot(l *Launch) (string, error) {
	var r io.ReaderAt
	if len(l.Files) > 0 {
		r = l.Files[0]
	} else {
		f, err := os.Open(l.Binary)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	needs, err := libc.Read(r)
	if err != nil || needs.Static() {
		return "", nil
	}
	if dir, ok := libc.Sysroot(l.Arch); ok {
		return dir, nil
	}
	fix := "link the worker statically"
	if pkg, ok := libc.SysrootPackage(l.Arch); ok {
		fix = "install the platform's C library for qemu-user (apt-get install " + pkg + "), or " + fix
	}
	return "", problem.Failf(fix, "the %s/%s worker is linked dynamically (%s) and this machine has no %s C library", l.OS, l.Arch, needs.Interpreter, l.Arch)
}

// Emulator says how to run a binary built for goos/goarch on this machine:
// nil for a binary this machine runs itself (its own platform, or one the
// kernel hands to a registered binfmt_misc interpreter), or the command to
// prefix, such as ["/usr/bin/qemu-aarch64-static"], found on PATH.
func Emulator(goos, goarch string) ([]string, error) {
	return findEmulator(goos, goarch, runtime.GOOS, runtime.GOARCH, exec.LookPath, binfmtDir)
}

func findEmulator(goos, goarch, hostOS, hostArch string, lookPath func(string) (string, error), binfmt string) ([]string, error) {
	if goos == hostOS && goarch == hostArch {
		return nil, nil
	}
	cannot := fmt.Sprintf("cannot run %s/%s workers on this %s/%s machine", goos, goarch, hostOS, hostArch)
	if goos != "linux" || hostOS != "linux" {
		// qemu-user translates Linux system calls for Linux hosts only.
		return nil, fmt.Errorf("%s: build the worker for %s/%s to run it here", cannot, hostOS, hostArch)
	}
	arch, ok := qemuArch[goarch]
	if !ok {
		return nil, fmt.Errorf("%s: qemu-user does not emulate %s", cannot, goarch)
	}
	for _, name := range []string{"qemu-" + arch + "-static", "qemu-" + arch} {
		if p, err := lookPath(name); err == nil {
			return []string{p}, nil
		}
	}
	if binfmtEnabled(binfmt, "qemu-"+arch) {
		return nil, nil
	}
	return nil, fmt.Errorf("%s: install qemu-user (apt-get install qemu-user-static)", cannot)
}

// binfmtEnabled reports whether the kernel runs binaries through the
// binfmt_misc entry name.
func binfmtEnabled(dir, name string) bool {
	for _, f := range []string{"status", name} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.HasPrefix(b, []byte("enabled")) {
			return false
		}
	}
	return true
}

// elfArch maps ELF machines to GOARCH; for machines with both byte orders
// the little-endian name is completed below.
var elfArch = map[elf.Machine]string{
	elf.EM_386:       "386",
	elf.EM_X86_64:    "amd64",
	elf.EM_ARM:       "arm",
	elf.EM_AARCH64:   "arm64",
	elf.EM_LOONGARCH: "loong64",
	elf.EM_PPC64:     "ppc64",
	elf.EM_RISCV:     "riscv64",
	elf.EM_S390:      "s390x",
}

// ErrNotELF is a binary this platform runs in its own format, or a script:
// it runs as it is.
var ErrNotELF = errors.New("not an ELF binary")

// BinaryPlatform reads which platform the ELF executable at path is built
// for, for Launch's OS and Arch.
func BinaryPlatform(path string) (goos, goarch string, err error) {
	file, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer file.Close()
	return Platform(file)
}

// Platform reads which platform the ELF executable r is built for: the
// open file a worker is started from.
func Platform(r io.ReaderAt) (goos, goarch string, err error) {
	f, err := elf.NewFile(r)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return "", "", ErrNotELF
		}
		return "", "", err
	}

	switch f.OSABI {
	case elf.ELFOSABI_FREEBSD:
		goos = "freebsd"
	case elf.ELFOSABI_NETBSD:
		goos = "netbsd"
	case elf.ELFOSABI_OPENBSD:
		goos = "openbsd"
	default:
		goos = "linux"
	}
	le := f.Data == elf.ELFDATA2LSB
	switch f.Machine {
	case elf.EM_MIPS:
		goarch = "mips"
		if f.Class == elf.ELFCLASS64 {
			goarch = "mips64"
		}
		if le {
			goarch += "le"
		}
	case elf.EM_PPC64:
		goarch = "ppc64"
		if le {
			goarch = "ppc64le"
		}
	default:
		a, ok := elfArch[f.Machine]
		if !ok {
			return "", "", fmt.Errorf("built for an unknown machine (%v)", f.Machine)
		}
		goarch = a
	}
	return goos, goarch, nil
}

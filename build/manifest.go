package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/digest"
)

// ManifestFile is the name of the manifest inside an output directory.
const ManifestFile = "manifest.json"

// ManifestSchema is the manifest format version. Readers reject versions
// they do not know instead of guessing.
const ManifestSchema = 1

// Role says what a binary is for.
type Role string

const (
	// RoleLauncher constructs the pipeline on the machine that submits it.
	RoleLauncher Role = "launcher"
	// RoleWorker runs the pipeline's DoFns on the runner's machines.
	RoleWorker Role = "worker"
	// RoleBoot is beamctl-boot, the entrypoint of worker images, for a
	// worker's platform.
	RoleBoot Role = "boot"
)

// Manifest describes the contents of an output directory.
type Manifest struct {
	Schema      int        `json:"schemaVersion"`
	Name        string     `json:"name"`
	Package     string     `json:"package"`
	Module      string     `json:"module"`
	GoDirective string     `json:"goDirective,omitempty"`
	BeamVersion string     `json:"beamVersion"`
	BeamReplace string     `json:"beamReplace,omitempty"`
	GoVersion   string     `json:"goVersion"`
	Flags       BuildFlags `json:"flags"`
	Binaries    []Binary   `json:"binaries"`
	// Image is the worker image last staged from these binaries.
	Image *ImageRecord `json:"image,omitempty"`
	// Source is the revision the binaries were built from, when the
	// module is in version control; Builder is the beamctl that built
	// them. Both go into the provenance an image is signed with, so that
	// stage DIST signs the same facts on a machine without Go or the
	// source.
	Source  *Source `json:"source,omitempty"`
	Builder string  `json:"builder,omitempty"`
}

// Source is a build's version-control stamp, as go build records it.
type Source struct {
	VCS      string `json:"vcs"`
	Revision string `json:"revision"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified"`
}

// ImageRecord is a worker image made from an output directory.
type ImageRecord struct {
	// Image is REPO@sha256:...; Digest its manifest's (or index's) digest.
	Image     string          `json:"image"`
	Digest    string          `json:"digest"`
	Platforms []ImagePlatform `json:"platforms"`
}

// ImagePlatform is one platform's image within an ImageRecord.
type ImagePlatform struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
}

// BuildFlags are the settings the binaries were built with.
type BuildFlags struct {
	Tags    string `json:"tags,omitempty"`
	LDFlags string `json:"ldflags,omitempty"`
	GCFlags string `json:"gcflags,omitempty"`
	Debug   bool   `json:"debug"`
	Strip   bool   `json:"stripWorkers"`
	// Local is a build for a run on this machine (Options.Local): the
	// host's worker is the launcher.
	Local bool `json:"local,omitempty"`
	// Trimpath is fixed, and recorded so a reader need not know. CGO says
	// whether the launcher and workers were built with cgo.
	Trimpath bool `json:"trimpath"`
	CGO      bool `json:"cgo"`
	// CGOLink is how binaries built with cgo link the C library on Linux:
	// static or dynamic.
	CGOLink string `json:"cgoLink,omitempty"`
}

// Binary is one built program.
type Binary struct {
	Role     Role     `json:"role"`
	Platform Platform `json:"platform"`
	File     string   `json:"file"`
	SHA256   string   `json:"sha256"`
	Size     int64    `json:"size"`
	// CGO says how a binary built with cgo links the C library.
	CGO *CGOBinary `json:"cgo,omitempty"`
}

// Launcher returns the launcher for p, if the manifest has one.
func (m *Manifest) Launcher(p Platform) (Binary, bool) {
	for _, b := range m.Binaries {
		if b.Role == RoleLauncher && b.Platform == p {
			return b, true
		}
	}
	return Binary{}, false
}

// Boot returns beamctl-boot for p, if the manifest has it.
func (m *Manifest) Boot(p Platform) (Binary, bool) {
	for _, b := range m.Binaries {
		if b.Role == RoleBoot && b.Platform == p {
			return b, true
		}
	}
	return Binary{}, false
}

// Workers returns the manifest's workers in build order.
func (m *Manifest) Workers() []Binary {
	var out []Binary
	for _, b := range m.Binaries {
		if b.Role == RoleWorker {
			out = append(out, b)
		}
	}
	return out
}

// ReadManifest reads and checks DIR/manifest.json. It does not hash the
// binaries; callers verify the ones they use.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &ManifestError{Path: p, Reason: "does not exist", Dir: dir, Fix: "build the pipeline into " + dir + " first"}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return parseManifest(p, dir, data)
}

// parseManifest checks data, the manifest read from path in dir.
func parseManifest(p, dir string, data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, &ManifestError{Path: p, Reason: "is corrupt (" + err.Error() + ")", Dir: dir, Fix: "build the pipeline into " + dir + " again"}
	}
	if m.Schema != ManifestSchema {
		return nil, &ManifestError{Path: p, Reason: fmt.Sprintf("has schema version %d; this beamctl reads version %d", m.Schema, ManifestSchema), Dir: dir, Fix: "build the pipeline again with this version"}
	}
	for _, b := range m.Binaries {
		if b.File == "" || filepath.Base(b.File) != b.File || strings.HasPrefix(b.File, ".") {
			return nil, &ManifestError{Path: p, Reason: fmt.Sprintf("names an invalid file %q", b.File), Dir: dir, Fix: "build the pipeline into " + dir + " again"}
		}
		if !digest.Valid(b.SHA256) || (b.Role != RoleLauncher && b.Role != RoleWorker && b.Role != RoleBoot) {
			return nil, &ManifestError{Path: p, Reason: fmt.Sprintf("has an invalid entry for %s", b.File), Dir: dir, Fix: "build the pipeline into " + dir + " again"}
		}
	}
	return &m, nil
}

// ManifestError is an output directory whose manifest cannot be used.
type ManifestError struct {
	// Path is the manifest's; Dir the output directory's, as given.
	Path, Dir   string
	Reason, Fix string
}

func (e *ManifestError) Error() string { return e.Path + " " + e.Reason + ": " + e.Fix }

// Invalid marks the error as a problem with the user's input.
func (e *ManifestError) Invalid() bool { return true }

// Write replaces dir's manifest with m, atomically.
func (m *Manifest) Write(dir string) error {
	data, err := m.marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestFile), data, 0o644)
}

func (m *Manifest) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

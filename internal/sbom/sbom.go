// Package sbom describes a Go binary as an SPDX 2.3 JSON document, from the
// build information the Go linker embeds in it: the main module, the
// toolchain and every dependency module, with the build settings.
//
// The document goes into worker container images, whose digests must not
// change when nothing else did, so the same binary and Options always give
// byte-identical output: nothing depends on the clock, the file's location
// or map order.
package sbom

import (
	"bytes"
	"cmp"
	"context"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beamctl/beamctl/internal/digest"
)

// MediaType is the media type of the documents this package writes, as an
// OCI artifact or referrer expects it.
const MediaType = "application/spdx+json"

// Options are what the binary cannot tell about its own document.
type Options struct {
	// Created is the document's creation time. It is required rather than
	// defaulted to now, which would make every document differ; pass the
	// source's date or a constant.
	Created time.Time
	// Name names the document, such as the image or package it describes.
	// Empty means the binary's main package path.
	Name string
	// Namespace is the documentNamespace URI. Empty derives one from Name
	// and the binary's digest, so a rebuild that changes the binary changes
	// the namespace and an identical one keeps it.
	Namespace string
}

// devel is the version the go command gives a main module it built from a
// work tree rather than a tagged module.
const devel = "(devel)"

var errNoModule = errors.New("no module information (built outside module mode)")

// FromFile describes the Go binary at path. The build info and the digest
// come from one open file, so they describe the same content even if path
// is replaced meanwhile.
func FromFile(path string, o Options) ([]byte, error) {
	bi, sum, err := readBinary(path)
	if err != nil {
		// The message names the file once; a PathError would name it again.
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading build info of %s: %w", path, err)
	}
	return FromBuildInfo(bi, sum, o)
}

func readBinary(path string) (*debug.BuildInfo, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	bi, err := buildinfo.Read(f)
	if err != nil {
		return nil, "", err
	}
	if bi.Main.Path == "" {
		return nil, "", errNoModule
	}
	// buildinfo reads with ReadAt, which leaves the offset at the start.
	s, err := digest.Reader(context.Background(), f)
	if err != nil {
		return nil, "", err
	}
	return bi, s.SHA256, nil
}

// FromBuildInfo describes the binary whose build info is bi and whose
// content has the hex sha256 binarySHA256, for callers that already hold
// both, such as from a digest cache.
func FromBuildInfo(bi *debug.BuildInfo, binarySHA256 string, o Options) ([]byte, error) {
	if bi == nil || bi.Main.Path == "" {
		return nil, errNoModule
	}
	sum := strings.ToLower(binarySHA256)
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
		return nil, fmt.Errorf("binary sha256 %q is not 64 hex digits", binarySHA256)
	}
	if o.Created.IsZero() {
		return nil, errors.New("no document creation time given: a fixed one keeps the document reproducible")
	}
	name := cmp.Or(o.Name, bi.Path, bi.Main.Path)
	ns := o.Namespace
	if ns == "" {
		ns = "https://beamctl.dev/spdx/" + escapePath(name) + "-" + sum
	}

	pkgs := []pkg{mainPackage(bi, sum), toolchainPackage(bi.GoVersion)}
	for _, d := range bi.Deps {
		pkgs = append(pkgs, depPackage(d))
	}
	// The comment breaks ties, such as one module listed twice in a
	// hand-made BuildInfo, so that ids follow content, not input order.
	slices.SortStableFunc(pkgs, func(a, b pkg) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.VersionInfo, b.VersionInfo), cmp.Compare(a.Comment, b.Comment))
	})
	assignIDs(pkgs)

	doc := document{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            documentID,
		Name:              name,
		DocumentNamespace: ns,
		CreationInfo: creationInfo{
			Created:  o.Created.UTC().Truncate(time.Second).Format(time.RFC3339),
			Creators: []string{"Tool: beamctl"},
		},
		Packages: pkgs,
	}
	var mainID string
	for _, p := range pkgs {
		if p.main {
			mainID = p.SPDXID
		}
	}
	doc.Relationships = append(doc.Relationships, relationship{documentID, "DESCRIBES", mainID})
	for _, p := range pkgs {
		if !p.main {
			doc.Relationships = append(doc.Relationships, relationship{mainID, "DEPENDS_ON", p.SPDXID})
		}
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// Module paths and build flags may hold <, > or &; escaping them helps
	// no reader of a file and hurts every human one.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mainPackage(bi *debug.BuildInfo, sum string) pkg {
	settings := slices.Clone(bi.Settings)
	slices.SortStableFunc(settings, func(a, b debug.BuildSetting) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	comment := []string{"main package: " + bi.Path}
	if len(settings) > 0 {
		comment = append(comment, "build settings:")
		for _, s := range settings {
			comment = append(comment, s.Key+"="+s.Value)
		}
	}
	p := pkg{
		Name:                  bi.Main.Path,
		VersionInfo:           bi.Main.Version,
		DownloadLocation:      noAssertion,
		PrimaryPackagePurpose: "APPLICATION",
		Checksums:             []checksum{{"SHA256", sum}},
		Comment:               strings.Join(comment, "\n"),
		main:                  true,
	}
	if v := bi.Main.Version; v != devel {
		p.ExternalRefs = purlRef(bi.Main.Path, v)
	}
	return p
}

// toolchainPackage stands for the standard library and runtime linked in,
// which scanners match against Go's own advisories by the stdlib purl.
func toolchainPackage(goVersion string) pkg {
	p := pkg{
		Name:                  "go",
		VersionInfo:           goVersion,
		DownloadLocation:      noAssertion,
		PrimaryPackagePurpose: "LIBRARY",
	}
	// A release reads "go1.26.8", maybe followed by " X:experiment"; a
	// development toolchain's "devel ..." has no release to point at.
	if f := strings.Fields(goVersion); len(f) > 0 {
		if v, ok := strings.CutPrefix(f[0], "go"); ok && v != "" {
			p.ExternalRefs = purlRef("stdlib", v)
		}
	}
	return p
}

// depPackage describes the module that was linked: the replacement when
// there is one, as the original's code is not in the binary.
func depPackage(d *debug.Module) pkg {
	m := d
	var comment []string
	if d.Replace != nil {
		m = d.Replace
		comment = append(comment, "replaces "+modString(d.Path, d.Version))
	}
	// SPDX has no algorithm for the go.sum hash, which is a hash of the
	// module's file tree and not of any file in the binary.
	if m.Sum != "" {
		comment = append(comment, "go.sum hash: "+m.Sum)
	}
	return pkg{
		Name:                  m.Path,
		VersionInfo:           m.Version,
		DownloadLocation:      noAssertion,
		PrimaryPackagePurpose: "LIBRARY",
		ExternalRefs:          purlRef(m.Path, m.Version),
		Comment:               strings.Join(comment, "\n"),
	}
}

func modString(path, version string) string {
	if version == "" {
		return path
	}
	return path + "@" + version
}

// purlRef is the package URL of a module version; none for a version-less
// one, such as a replacement by a local directory, which no registry holds.
func purlRef(path, version string) []externalRef {
	if version == "" {
		return nil
	}
	return []externalRef{{
		ReferenceCategory: "PACKAGE-MANAGER",
		ReferenceType:     "purl",
		ReferenceLocator:  "pkg:golang/" + escapePath(path) + "@" + url.PathEscape(version),
	}}
}

// escapePath escapes each element of a slash-separated path on its own, so
// the slashes stay separators.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// assignIDs gives each package, in order, an id made from its name and
// version. Names that differ only in characters an id cannot hold, such as
// a/b and a-b, would share one; the later in order gets a number, which
// keeps ids stable as long as the set of modules is.
func assignIDs(pkgs []pkg) {
	taken := map[string]bool{documentID: true}
	for i := range pkgs {
		base := "SPDXRef-Package-" + sanitize(modString(pkgs[i].Name, pkgs[i].VersionInfo))
		id := base
		for n := 2; taken[id]; n++ {
			id = base + "-" + strconv.Itoa(n)
		}
		taken[id] = true
		pkgs[i].SPDXID = id
	}
}

// sanitize replaces what an SPDX id may not hold, anything but letters,
// digits, '.' and '-', with '-'.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}

const (
	documentID  = "SPDXRef-DOCUMENT"
	noAssertion = "NOASSERTION"
)

// The types below are the part of the SPDX 2.3 JSON schema this package
// writes; field order is output order.

type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []pkg          `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type pkg struct {
	SPDXID                string        `json:"SPDXID"`
	Name                  string        `json:"name"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
	Checksums             []checksum    `json:"checksums,omitempty"`
	ExternalRefs          []externalRef `json:"externalRefs,omitempty"`
	Comment               string        `json:"comment,omitempty"`

	main bool
}

type checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type externalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

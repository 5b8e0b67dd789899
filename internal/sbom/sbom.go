// Package sbom describes a Go binary as an SPDX 2.3 JSON document, from the
// build information the Go linker embeds in it: the main module, the
// toolchain and every dependency module, with the build settings. The
// document is built and written with SPDX's own Go library
// (github.com/spdx/tools-golang), so that it follows the specification as
// the library's readers and validators take it.
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

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

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
func FromFile(ctx context.Context, path string, o Options) ([]byte, error) {
	bi, sum, err := readBinary(ctx, path)
	if err != nil {
		// The message names the file once; a PathError would name it again.
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading build info of %s: %w", path, err)
	}
	return FromBuildInfo(bi, sum, o)
}

func readBinary(ctx context.Context, path string) (*debug.BuildInfo, string, error) {
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
	s, err := digest.Reader(ctx, f)
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

	main := mainPackage(bi, sum)
	pkgs := []*spdx.Package{main, toolchainPackage(bi.GoVersion)}
	for _, d := range bi.Deps {
		pkgs = append(pkgs, depPackage(d))
	}
	// The comment breaks ties, such as one module listed twice in a
	// hand-made BuildInfo, so that ids follow content, not input order.
	slices.SortStableFunc(pkgs, func(a, b *spdx.Package) int {
		return cmp.Or(cmp.Compare(a.PackageName, b.PackageName), cmp.Compare(a.PackageVersion, b.PackageVersion), cmp.Compare(a.PackageComment, b.PackageComment))
	})
	assignIDs(pkgs)

	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    documentID,
		DocumentName:      name,
		DocumentNamespace: ns,
		CreationInfo: &spdx.CreationInfo{
			Created:  o.Created.UTC().Truncate(time.Second).Format(time.RFC3339),
			Creators: []spdx.Creator{{CreatorType: "Tool", Creator: "beamctl"}},
		},
		Packages: pkgs,
	}
	mainID := main.PackageSPDXIdentifier
	doc.Relationships = append(doc.Relationships, relationship(documentID, common.TypeRelationshipDescribe, mainID))
	for _, p := range pkgs {
		if p.PackageSPDXIdentifier != mainID {
			doc.Relationships = append(doc.Relationships, relationship(mainID, common.TypeRelationshipDependsOn, p.PackageSPDXIdentifier))
		}
	}

	var buf bytes.Buffer
	// Module paths and build flags may hold <, > or &; escaping them helps
	// no reader of a file and hurts every human one.
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("writing the SPDX document: %w", err)
	}
	return buf.Bytes(), nil
}

func relationship(a spdx.ElementID, typ string, b spdx.ElementID) *spdx.Relationship {
	return &spdx.Relationship{RefA: common.MakeDocElementID("", string(a)), Relationship: typ, RefB: common.MakeDocElementID("", string(b))}
}

func mainPackage(bi *debug.BuildInfo, sum string) *spdx.Package {
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
	p := &spdx.Package{
		PackageName:             bi.Main.Path,
		PackageVersion:          bi.Main.Version,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   purposeApplication,
		PackageChecksums:        []spdx.Checksum{{Algorithm: common.SHA256, Value: sum}},
		PackageComment:          strings.Join(comment, "\n"),
	}
	if v := bi.Main.Version; v != devel {
		p.PackageExternalReferences = purlRef(bi.Main.Path, v)
	}
	return p
}

// toolchainPackage stands for the standard library and runtime linked in,
// which scanners match against Go's own advisories by the stdlib purl.
func toolchainPackage(goVersion string) *spdx.Package {
	p := &spdx.Package{
		PackageName:             "go",
		PackageVersion:          goVersion,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   purposeLibrary,
	}
	// A release reads "go1.26.8", maybe followed by " X:experiment"; a
	// development toolchain's "devel ..." has no release to point at.
	if f := strings.Fields(goVersion); len(f) > 0 {
		if v, ok := strings.CutPrefix(f[0], "go"); ok && v != "" {
			p.PackageExternalReferences = purlRef("stdlib", v)
		}
	}
	return p
}

// depPackage describes the module that was linked: the replacement when
// there is one, as the original's code is not in the binary.
func depPackage(d *debug.Module) *spdx.Package {
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
	return &spdx.Package{
		PackageName:               m.Path,
		PackageVersion:            m.Version,
		PackageDownloadLocation:   noAssertion,
		PrimaryPackagePurpose:     purposeLibrary,
		PackageExternalReferences: purlRef(m.Path, m.Version),
		PackageComment:            strings.Join(comment, "\n"),
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
func purlRef(path, version string) []*spdx.PackageExternalReference {
	if version == "" {
		return nil
	}
	return []*spdx.PackageExternalReference{{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  "pkg:golang/" + escapePath(path) + "@" + url.PathEscape(version),
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
func assignIDs(pkgs []*spdx.Package) {
	taken := map[spdx.ElementID]bool{documentID: true}
	for _, p := range pkgs {
		base := "Package-" + sanitize(modString(p.PackageName, p.PackageVersion))
		id := spdx.ElementID(base)
		for n := 2; taken[id]; n++ {
			id = spdx.ElementID(base + "-" + strconv.Itoa(n))
		}
		taken[id] = true
		p.PackageSPDXIdentifier = id
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

// documentID is the document's element id, without the "SPDXRef-" that
// the library adds to every id it writes.
const documentID spdx.ElementID = "DOCUMENT"

const (
	noAssertion        = "NOASSERTION"
	purposeApplication = "APPLICATION"
	purposeLibrary     = "LIBRARY"
)

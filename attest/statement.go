package attest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// Predicate types, as cosign names them: verify-attestation --type
// slsaprovenance1 and spdxjson select these.
const (
	// SignaturePredicate is what cosign's own image signatures attest:
	// nothing but the subject.
	SignaturePredicate  = "https://sigstore.dev/cosign/sign/v1"
	ProvenancePredicate = "https://slsa.dev/provenance/v1"
	SBOMPredicate       = "https://spdx.dev/Document"
)

// BuildType names what beamctl's provenance records, so that a verifier
// knows how to read its parameters.
const BuildType = "https://github.com/beamctl/beamctl/buildtypes/worker/v1"

// Image is a signed image: a platform's image with its worker, or an
// index of them.
type Image struct {
	// Repo is the image's repository; Digest its manifest's, sha256:...
	Repo, Digest string
	// Platform is os/arch[/variant] of a platform image; "" for an index.
	Platform string
	// WorkerFile and WorkerSHA256 are the worker the image carries.
	WorkerFile, WorkerSHA256 string
}

// Build is what a provenance statement says about how a worker was made:
// the inputs beamctl's build recorded and the module graph linked in.
type Build struct {
	Module, Package string
	Targets         []string
	// Flags are the build flags (tags, ldflags, gcflags, debug, ...).
	Flags map[string]any
	// GoVersion and BeamVersion are the toolchain's and the Beam SDK's.
	GoVersion, BeamVersion string
	// VCS, Revision and Modified are the source's, from build info.
	VCS, Revision string
	Modified      bool
	// Builder is beamctl's identity and version, e.g.
	// https://github.com/beamctl/beamctl@v1.4.0.
	Builder string
	// Deps are the modules linked into the worker.
	Deps []Dep
}

// Dep is one module in a worker.
type Dep struct {
	Path, Version, Sum string
}

func subjectOf(img Image) []*intoto.ResourceDescriptor {
	s := []*intoto.ResourceDescriptor{{Name: img.Repo, Digest: map[string]string{"sha256": strings.TrimPrefix(img.Digest, "sha256:")}}}
	if img.WorkerSHA256 != "" {
		s = append(s, &intoto.ResourceDescriptor{Name: img.WorkerFile, Digest: map[string]string{"sha256": img.WorkerSHA256}})
	}
	return s
}

func statement(img Image, predicateType string, predicate *structpb.Struct) ([]byte, error) {
	st := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       subjectOf(img),
		PredicateType: predicateType,
		Predicate:     predicate,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement about %s: %w", img.Digest, err)
	}
	return protojson.Marshal(st)
}

// SignatureStatement is the statement an image's signature signs, as
// cosign sign makes it.
func SignatureStatement(img Image) ([]byte, error) {
	st := &intoto.Statement{Type: intoto.StatementTypeUri, Subject: subjectOf(img)[:1], PredicateType: SignaturePredicate}
	return protojson.Marshal(st)
}

// SBOMStatement attests doc, an SPDX JSON document, about img.
func SBOMStatement(img Image, doc []byte) ([]byte, error) {
	var p structpb.Struct
	if err := protojson.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("the SBOM of %s: %w", img.Digest, err)
	}
	return statement(img, SBOMPredicate, &p)
}

// ProvenanceStatement is SLSA Provenance v1 about img, built as b says.
func ProvenanceStatement(img Image, b Build) ([]byte, error) {
	ext, err := structpb.NewStruct(map[string]any{
		"module":   b.Module,
		"package":  b.Package,
		"targets":  toAny(b.Targets),
		"platform": img.Platform,
		"flags":    b.Flags,
		// The worker the build made for this platform, as the manifest
		// records it: what a verifier compares with DIST.
		"worker": map[string]any{"file": img.WorkerFile, "sha256": img.WorkerSHA256},
	})
	if err != nil {
		return nil, fmt.Errorf("provenance parameters: %w", err)
	}
	internal, err := structpb.NewStruct(map[string]any{"goVersion": b.GoVersion, "beamVersion": b.BeamVersion})
	if err != nil {
		return nil, err
	}
	var deps []*intoto.ResourceDescriptor
	if b.Revision != "" {
		src := &intoto.ResourceDescriptor{Uri: b.VCS + "+" + b.Module, Digest: map[string]string{"gitCommit": b.Revision}}
		if b.VCS != "git" {
			src.Digest = map[string]string{b.VCS + "Commit": b.Revision}
		}
		if b.Modified {
			src.Annotations, _ = structpb.NewStruct(map[string]any{"modified": true})
		}
		deps = append(deps, src)
	}
	for _, d := range b.Deps {
		r := &intoto.ResourceDescriptor{Uri: "pkg:golang/" + d.Path + "@" + d.Version}
		// The module's go.sum hash is the dirhash the in-toto digest set
		// calls dirHash1.
		if h, ok := strings.CutPrefix(d.Sum, "h1:"); ok {
			if raw, err := base64.StdEncoding.DecodeString(h); err == nil {
				r.Digest = map[string]string{"dirHash1": hex.EncodeToString(raw)}
			}
		}
		deps = append(deps, r)
	}
	p := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			InternalParameters:   internal,
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{Builder: &slsa.Builder{Id: b.Builder}},
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance of %s: %w", img.Digest, err)
	}
	raw, err := protojson.Marshal(p)
	if err != nil {
		return nil, err
	}
	var ps structpb.Struct
	if err := protojson.Unmarshal(raw, &ps); err != nil {
		return nil, err
	}
	return statement(img, ProvenancePredicate, &ps)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Provenance is what a verified provenance statement says.
type Provenance struct {
	// ImageDigest is the image it is about; WorkerSHA256 its worker's.
	ImageDigest, WorkerSHA256 string
	Platform                  string
	Module, Package           string
	Revision                  string
	Modified                  bool
	Builder                   string
	GoVersion, BeamVersion    string
}

// readProvenance reads the facts a verifier reports from a provenance
// statement.
func readProvenance(st *intoto.Statement) (*Provenance, error) {
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, err
	}
	var p slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("the provenance is not SLSA Provenance v1: %w", err)
	}
	if p.GetBuildDefinition().GetBuildType() != BuildType {
		return nil, fmt.Errorf("the provenance is of build type %q, not beamctl's", p.GetBuildDefinition().GetBuildType())
	}
	out := &Provenance{Builder: p.GetRunDetails().GetBuilder().GetId()}
	subj := st.GetSubject()
	if len(subj) > 0 {
		out.ImageDigest = "sha256:" + subj[0].GetDigest()["sha256"]
	}
	if len(subj) > 1 {
		out.WorkerSHA256 = subj[1].GetDigest()["sha256"]
	}
	ext := p.GetBuildDefinition().GetExternalParameters().AsMap()
	out.Module, _ = ext["module"].(string)
	out.Package, _ = ext["package"].(string)
	out.Platform, _ = ext["platform"].(string)
	in := p.GetBuildDefinition().GetInternalParameters().AsMap()
	out.GoVersion, _ = in["goVersion"].(string)
	out.BeamVersion, _ = in["beamVersion"].(string)
	deps := p.GetBuildDefinition().GetResolvedDependencies()
	if i := slices.IndexFunc(deps, func(d *intoto.ResourceDescriptor) bool { return d.GetDigest()["gitCommit"] != "" }); i >= 0 {
		out.Revision = deps[i].GetDigest()["gitCommit"]
		if a := deps[i].GetAnnotations().AsMap(); a["modified"] == true {
			out.Modified = true
		}
	}
	return out, nil
}

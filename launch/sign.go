package launch

import (
	"cmp"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/beamctl/beamctl/attest"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/stage/image"
)

// signWith is the image.Options.Sign of m's images: each platform image
// gets a signature, its SLSA provenance and its SBOM as an attestation;
// the index a signature.
func signWith(s *attest.Signer, m *build.Manifest, o image.Options) func(context.Context, image.Subject) ([]image.Attachment, error) {
	workers := map[string]string{}
	for _, p := range o.Platforms {
		workers[p.Platform.String()] = p.Worker
	}
	return func(ctx context.Context, sub image.Subject) ([]image.Attachment, error) {
		img := attest.Image{Repo: sub.Repo, Digest: sub.Digest, Platform: sub.Platform, WorkerFile: sub.WorkerFile, WorkerSHA256: sub.WorkerSHA256}
		type made struct {
			predicate string
			st        []byte
		}
		sig, err := attest.SignatureStatement(img)
		if err != nil {
			return nil, err
		}
		statements := []made{{attest.SignaturePredicate, sig}}
		if sub.Platform != "" {
			b, err := provenanceOf(m, workers[sub.Platform])
			if err != nil {
				return nil, err
			}
			prov, err := attest.ProvenanceStatement(img, b)
			if err != nil {
				return nil, err
			}
			statements = append(statements, made{attest.ProvenancePredicate, prov})
			if sub.SBOM != nil {
				sb, err := attest.SBOMStatement(img, sub.SBOM)
				if err != nil {
					return nil, err
				}
				statements = append(statements, made{attest.SBOMPredicate, sb})
			}
		}
		var out []image.Attachment
		for _, st := range statements {
			bundle, err := s.Sign(ctx, st.st)
			if err != nil {
				return nil, err
			}
			out = append(out, image.Attachment{MediaType: attest.BundleMediaType, Doc: bundle, Annotations: map[string]string{
				// cosign reads these to tell a bundle's content from the
				// listing alone.
				"dev.sigstore.bundle.content":       "dsse-envelope",
				"dev.sigstore.bundle.predicateType": st.predicate,
			}})
		}
		return out, nil
	}
}

// provenanceOf is what m records of how worker was built, with the
// modules the worker's build info lists.
func provenanceOf(m *build.Manifest, worker string) (attest.Build, error) {
	b := attest.Build{
		Module: m.Module, Package: m.Package, GoVersion: m.GoVersion, BeamVersion: m.BeamVersion,
		Builder: cmp.Or(m.Builder, "https://github.com/beamctl/beamctl"),
		Flags: map[string]any{
			"tags": m.Flags.Tags, "ldflags": m.Flags.LDFlags, "gcflags": m.Flags.GCFlags,
			"debug": m.Flags.Debug, "stripWorkers": m.Flags.Strip, "trimpath": m.Flags.Trimpath, "cgo": m.Flags.CGO,
		},
	}
	for _, w := range m.Workers() {
		b.Targets = append(b.Targets, w.Platform.String())
	}
	if m.Source != nil {
		b.VCS, b.Revision, b.Modified = m.Source.VCS, m.Source.Revision, m.Source.Modified
	}
	bi, err := buildinfo.ReadFile(worker)
	if err != nil {
		return b, fmt.Errorf("reading build info of %s: %w", worker, err)
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		b.Deps = append(b.Deps, attest.Dep{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	return b, nil
}

// VerifiedImage is what a verification found.
type VerifiedImage struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Policy names the key or identity the signatures were checked
	// against.
	Policy    string             `json:"policy"`
	Platforms []VerifiedPlatform `json:"platforms"`
}

// VerifiedPlatform is one platform image's verified facts.
type VerifiedPlatform struct {
	Platform     string `json:"platform"`
	Digest       string `json:"digest"`
	WorkerSHA256 string `json:"worker_sha256"`
	Revision     string `json:"source_revision,omitempty"`
	Modified     bool   `json:"source_modified,omitempty"`
	Module       string `json:"module,omitempty"`
	Package      string `json:"package,omitempty"`
	Builder      string `json:"builder"`
	Signer       string `json:"signer"`
	SBOM         bool   `json:"sbom"`
}

// VerifyError is an image that does not verify: which, and why.
type VerifyError struct {
	Image, Reason string
}

func (e *VerifyError) Error() string { return "image " + e.Image + " " + e.Reason }

// Unwrap makes every VerifyError an attest.ErrNotVerified.
func (e *VerifyError) Unwrap() error { return attest.ErrNotVerified }

// VerifyImage checks that ref's index (if any) and every platform image
// carry a signature under p, and each platform image a provenance
// statement, and returns what the provenance says.
func VerifyImage(ctx context.Context, ref string, p *attest.Policy, o image.Options) (*VerifiedImage, error) {
	res, err := image.Inspect(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	out := &VerifiedImage{Image: res.Image, Digest: res.Digest, Policy: p.Describe()}
	index := len(res.Platforms) != 1 || res.Platforms[0].Digest != res.Digest
	if index {
		if _, _, err := verified(ctx, res.Image, res.Digest, p, o); err != nil {
			return nil, err
		}
	}
	for _, pl := range res.Platforms {
		name := res.Image
		if index {
			name += " (" + pl.Platform + ")"
		}
		sig, rest, err := verified(ctx, name, pl.Digest, p, o)
		if err != nil {
			return nil, err
		}
		vp := VerifiedPlatform{Platform: pl.Platform, Digest: pl.Digest, Signer: sig.Signer}
		prov, ok := rest[attest.ProvenancePredicate]
		if !ok {
			return nil, &VerifyError{name, "has no provenance signed by " + p.Describe()}
		}
		pr, err := attest.ReadProvenance(prov)
		if err != nil {
			return nil, &VerifyError{name, "has a signed provenance beamctl cannot read: " + err.Error()}
		}
		if pr.ImageDigest != pl.Digest {
			return nil, &VerifyError{name, "has a provenance of another image, " + pr.ImageDigest}
		}
		vp.WorkerSHA256, vp.Revision, vp.Modified, vp.Builder = pr.WorkerSHA256, pr.Revision, pr.Modified, pr.Builder
		vp.Module, vp.Package = pr.Module, pr.Package
		_, vp.SBOM = rest[attest.SBOMPredicate]
		out.Platforms = append(out.Platforms, vp)
	}
	return out, nil
}

// verified checks the bundles attached to digest: one must be a signature
// under p; the others verified are returned by predicate type.
func verified(ctx context.Context, name, digest string, p *attest.Policy, o image.Options) (*attest.Verified, map[string]*attest.Verified, error) {
	atts, err := image.Attached(ctx, o.Ref, digest, attest.BundleMediaType, o)
	if err != nil {
		return nil, nil, err
	}
	if len(atts) == 0 {
		return nil, nil, &VerifyError{name, "is not signed: it has no Sigstore bundle attached"}
	}
	var sig *attest.Verified
	rest := map[string]*attest.Verified{}
	var failures []string
	for _, a := range atts {
		v, err := p.Verify(a.Doc, digest)
		if err != nil {
			if errors.Is(err, attest.ErrNotVerified) {
				failures = append(failures, strings.TrimPrefix(err.Error(), attest.ErrNotVerified.Error()+": "))
				continue
			}
			return nil, nil, err
		}
		pt := v.Statement.GetPredicateType()
		if pt == attest.SignaturePredicate {
			sig = v
		} else if _, seen := rest[pt]; !seen {
			rest[pt] = v
		}
	}
	if sig == nil {
		why := "none of its " + fmt.Sprint(len(atts)) + " bundles is signed by " + p.Describe()
		if len(failures) > 0 {
			slices.Sort(failures)
			why += " (" + slices.Compact(failures)[0] + ")"
		}
		return nil, nil, &VerifyError{name, "does not verify: " + why}
	}
	return sig, rest, nil
}

// checkVerified is the policy of a job: the image it runs verifies under
// p, and its provenance names the worker this build made.
func checkVerified(ctx context.Context, ref string, w build.Binary, p *attest.Policy, o image.Options) error {
	v, err := VerifyImage(ctx, ref, p, o)
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return problem.Usagef("sign the image with beamctl stage {SignKey}, or give the image and {VerifyKey} that belong together", "%s", ve.Error()).Wrap(err)
		}
		return err
	}
	i := slices.IndexFunc(v.Platforms, func(vp VerifiedPlatform) bool { return vp.Platform == w.Platform.String() })
	if i < 0 {
		return problem.Usagef("stage an image for "+w.Platform.String(), "image %s has no verified %s image", ref, w.Platform)
	}
	if got := v.Platforms[i].WorkerSHA256; got != w.SHA256 {
		return problem.Usagef("stage and sign the image from this build, or submit the build the image was made from",
			"image %s: its signed provenance names worker sha256 %s, but this build's %s worker is sha256 %s", ref, got, w.Platform, w.SHA256)
	}
	return nil
}

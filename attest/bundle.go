package attest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/beamctl/beamctl/internal/problem"
)

// BundleMediaType is the media type of a Sigstore bundle, and the
// artifact type of the referrers that carry one.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// inTotoPayload is the DSSE payload type of an in-toto statement.
const inTotoPayload = "application/vnd.in-toto+json"

// Signer signs statements into Sigstore bundles.
type Signer struct {
	key  sign.Keypair
	opts sign.BundleOptions
	// Identity says who signs: the key's file, or the certificate's
	// subject once known.
	Identity string
}

// Signer signs with k alone: the bundle carries the public key's hint
// and no certificate or transparency log entry.
func (k *Key) Signer(ref string) *Signer {
	return &Signer{key: k, Identity: "key " + ref}
}

// Keyless says how to sign with a short-lived certificate: Fulcio issues
// it for an OIDC identity token and Rekor logs each signature.
type Keyless struct {
	// IDToken is the CI's OIDC identity token for the sigstore audience.
	IDToken string
	// FulcioURL and RekorURL are the instances; default the public ones.
	FulcioURL, RekorURL string
	// Certificates and Logs, if set, stand in for Fulcio and Rekor (a
	// private deployment reached another way).
	Certificates sign.CertificateProvider
	Logs         []sign.Transparency
	// Key signs; default a new ephemeral key.
	Key sign.Keypair
	// Timeout bounds each request; default 30 s.
	Timeout time.Duration
}

// Public Sigstore instances.
const (
	PublicFulcio = "https://fulcio.sigstore.dev"
	PublicRekor  = "https://rekor.sigstore.dev"
)

// KeylessSigner signs with a certificate for k.IDToken.
func KeylessSigner(k Keyless) (*Signer, error) {
	if k.IDToken == "" && k.Certificates == nil {
		return nil, problem.Usagef("run where the CI provides an OIDC token (GitHub Actions with id-token: write, GitLab with id_tokens), or sign with {SignKey}", "keyless signing needs an OIDC identity token, and none was found")
	}
	if k.Timeout == 0 {
		k.Timeout = 30 * time.Second
	}
	key := k.Key
	if key == nil {
		eph, err := sign.NewEphemeralKeypair(nil)
		if err != nil {
			return nil, err
		}
		key = eph
	}
	certs := k.Certificates
	if certs == nil {
		certs = sign.NewFulcio(&sign.FulcioOptions{BaseURL: orDefault(k.FulcioURL, PublicFulcio), Timeout: k.Timeout, Retries: 2})
	}
	logs := k.Logs
	if logs == nil {
		logs = []sign.Transparency{sign.NewRekor(&sign.RekorOptions{BaseURL: orDefault(k.RekorURL, PublicRekor), Timeout: k.Timeout, Retries: 2})}
	}
	return &Signer{key: key, Identity: "keyless", opts: sign.BundleOptions{
		CertificateProvider:        certs,
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: k.IDToken},
		TransparencyLogs:           logs,
	}}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Sign wraps statement in a DSSE envelope, signs it and returns the
// bundle's JSON.
func (s *Signer) Sign(ctx context.Context, statement []byte) ([]byte, error) {
	opts := s.opts
	opts.Context = ctx
	b, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: inTotoPayload}, s.key, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, problem.Failf("check the signing service, or sign with a key", "signing failed: %s", problem.FirstLine(err.Error())).Wrap(err)
	}
	return protojson.Marshal(b)
}

// Policy says which signatures to trust.
type Policy struct {
	// Key is the public key of key-based signatures.
	Key *PublicKey
	// Identity and Issuer are the certificate's subject (an e-mail or a
	// workflow URI) and OIDC issuer of keyless signatures; IdentityRegexp
	// matches the subject instead of Identity.
	Identity, IdentityRegexp, Issuer string
	// TrustedRoot holds the certificate authorities and logs of keyless
	// signatures; default Sigstore's public ones, fetched over TUF.
	TrustedRoot root.TrustedMaterial
}

// Describe names the policy in a message: the key's file or the identity.
func (p *Policy) Describe() string {
	if p.Key != nil {
		return "the key " + p.Key.ref
	}
	id := p.Identity
	if id == "" {
		id = p.IdentityRegexp
	}
	return id + " (issuer " + p.Issuer + ")"
}

// Verified is a bundle whose signature holds, and what it signed.
type Verified struct {
	Statement *intoto.Statement
	// Signer is the certificate's subject for keyless signatures, else
	// the key's file.
	Signer string
}

// ErrNotVerified is the cause of every failed verification.
var ErrNotVerified = errors.New("not verified")

// Verify checks that bundle is a signature under p of a statement about
// digest (sha256:...), and returns the statement.
func (p *Policy) Verify(bundle []byte, digest string) (*Verified, error) {
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(bundle); err != nil {
		return nil, fmt.Errorf("%w: the bundle is malformed: %s", ErrNotVerified, problem.FirstLine(err.Error()))
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	if err != nil || !strings.HasPrefix(digest, "sha256:") {
		return nil, fmt.Errorf("digest %q is not sha256:HEX", digest)
	}
	var tm root.TrustedMaterial
	var vopts []verify.VerifierOption
	var popts []verify.PolicyOption
	if p.Key != nil {
		key := root.NewExpiringKey(p.Key.verifier, time.Time{}, time.Time{})
		tm = root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		vopts = append(vopts, verify.WithNoObserverTimestamps())
		popts = append(popts, verify.WithKey())
	} else {
		if p.TrustedRoot == nil {
			tr, err := root.FetchTrustedRoot()
			if err != nil {
				return nil, problem.Failf("reach Sigstore's TUF repository, or verify with {VerifyKey}", "cannot fetch Sigstore's trusted root: %s", problem.FirstLine(err.Error()))
			}
			p.TrustedRoot = tr
		}
		tm = p.TrustedRoot
		vopts = append(vopts, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
		id, err := verify.NewShortCertificateIdentity(p.Issuer, "", p.Identity, p.IdentityRegexp)
		if err != nil {
			return nil, problem.Usagef("give the certificate's identity and issuer exactly, or a valid regular expression", "identity policy: %s", problem.FirstLine(err.Error()))
		}
		popts = append(popts, verify.WithCertificateIdentity(id))
	}
	v, err := verify.NewVerifier(tm, vopts...)
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", raw), popts...))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotVerified, problem.FirstLine(err.Error()))
	}
	out := &Verified{Statement: res.Statement, Signer: p.Describe()}
	if c := res.Signature.Certificate; c != nil {
		out.Signer = c.SubjectAlternativeName
	}
	return out, nil
}

// PredicateOf is the predicate type of a bundle's statement, read without
// verifying it: which verification applies. "" when bundle holds none.
func PredicateOf(bundle []byte) string {
	var b sgbundle.Bundle
	if b.UnmarshalJSON(bundle) != nil {
		return ""
	}
	env := b.GetDsseEnvelope()
	if env == nil || env.GetPayloadType() != inTotoPayload {
		return ""
	}
	var st intoto.Statement
	if (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(env.GetPayload(), &st) != nil {
		return ""
	}
	return st.GetPredicateType()
}

// ReadProvenance reads what a verified provenance statement says.
func ReadProvenance(v *Verified) (*Provenance, error) { return readProvenance(v.Statement) }

// LoadTrustedRoot reads a Sigstore trusted root (trusted_root.json): the
// certificate authorities and logs of a private Sigstore, or a copy of
// the public one for machines that cannot reach its TUF repository.
func LoadTrustedRoot(path string) (root.TrustedMaterial, error) {
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, problem.Usagef("give a trusted_root.json (Sigstore's, or your instance's)", "trusted root %s: %s", path, problem.FirstLine(err.Error())).About("TrustedRoot")
	}
	return tr, nil
}

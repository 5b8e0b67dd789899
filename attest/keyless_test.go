package attest_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	"github.com/beamctl/beamctl/attest"
)

// virtualFulcio issues the certificate sigstore-go's test CA made for
// the signing key, as Fulcio would for an identity token.
type virtualFulcio struct{ cert *x509.Certificate }

func (f virtualFulcio) GetCertificate(context.Context, sign.Keypair, *sign.CertificateProviderOptions) ([]byte, error) {
	return f.cert.Raw, nil
}

// virtualRekor logs each signature in sigstore-go's test log, as Rekor
// would, with an inclusion proof and a signed entry timestamp.
type virtualRekor struct {
	vs   *ca.VirtualSigstore
	cert *x509.Certificate
}

func (r virtualRekor) GetTransparencyLogEntry(_ context.Context, _ []byte, b *protobundle.Bundle) error {
	env := b.GetDsseEnvelope()
	sig := env.GetSignatures()[0].GetSig()
	e, err := r.vs.GenerateTlogEntry(r.cert, &dsse.Envelope{
		PayloadType: env.GetPayloadType(),
		Payload:     base64.StdEncoding.EncodeToString(env.GetPayload()),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, sig, time.Now().Unix(), true)
	if err != nil {
		return err
	}
	// The test log's entry lacks what Rekor's answer carries: the entry's
	// kind and the log's signed promise to include it.
	tle := e.TransparencyLogEntry()
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	set, err := r.vs.RekorSignPayload(tlog.RekorPayload{
		Body: base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()), IntegratedTime: tle.GetIntegratedTime(),
		LogIndex: tle.GetLogIndex(), LogID: hex.EncodeToString(tle.GetLogId().GetKeyId()),
	})
	if err != nil {
		return err
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	b.VerificationMaterial.TlogEntries = append(b.VerificationMaterial.TlogEntries, tle)
	return nil
}

// TestKeyless signs with a certificate from sigstore-go's in-process test
// CA and an entry in its test log, and verifies by identity.
func TestKeyless(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	const identity, issuer = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main", "https://token.actions.githubusercontent.com"
	cert, priv, err := vs.GenerateLeafCert(identity, issuer)
	if err != nil {
		t.Fatal(err)
	}
	key, err := attest.NewKey(priv.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	s, err := attest.KeylessSigner(attest.Keyless{IDToken: "token", Key: key, Certificates: virtualFulcio{cert}, Logs: []sign.Transparency{virtualRekor{vs, cert}}})
	if err != nil {
		t.Fatal(err)
	}
	img := attest.Image{Repo: "127.0.0.1:5000/wc", Digest: digestOf("image"), Platform: "linux/amd64", WorkerFile: "w", WorkerSHA256: digestOf("worker")[7:]}
	st, err := attest.ProvenanceStatement(img, attest.Build{Module: "m", Package: "m", Builder: "https://github.com/beamctl/beamctl@test"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Sign(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	v, err := (&attest.Policy{Identity: identity, Issuer: issuer, TrustedRoot: vs}).Verify(b, img.Digest)
	if err != nil {
		t.Fatalf("keyless bundle does not verify: %v", err)
	}
	if v.Signer != identity {
		t.Errorf("signer %q, want %q", v.Signer, identity)
	}
	for name, p := range map[string]*attest.Policy{
		"another identity": {Identity: "https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main", Issuer: issuer, TrustedRoot: vs},
		"another issuer":   {Identity: identity, Issuer: "https://gitlab.com", TrustedRoot: vs},
		"identity pattern": {IdentityRegexp: "^https://github.com/evil/", Issuer: issuer, TrustedRoot: vs},
	} {
		if _, err := p.Verify(b, img.Digest); !errors.Is(err, attest.ErrNotVerified) {
			t.Errorf("%s: Verify = %v, want ErrNotVerified", name, err)
		}
	}
	other, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&attest.Policy{Identity: identity, Issuer: issuer, TrustedRoot: other}).Verify(b, img.Digest); !errors.Is(err, attest.ErrNotVerified) {
		t.Errorf("another CA: Verify = %v, want ErrNotVerified", err)
	}
	if _, err := attest.KeylessSigner(attest.Keyless{}); err == nil {
		t.Error("keyless signing without an identity token did not fail")
	}
}

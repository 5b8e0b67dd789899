package attest_test

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/beamctl/beamctl/attest"
)

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestSignVerify signs each kind of statement with a key and checks what
// verification accepts and refuses.
func TestSignVerify(t *testing.T) {
	k, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	img := attest.Image{Repo: "127.0.0.1:5000/team/wc", Digest: digestOf("image"), Platform: "linux/arm64", WorkerFile: "wc-worker-linux-arm64", WorkerSHA256: strings.TrimPrefix(digestOf("worker"), "sha256:")}
	prov, err := attest.ProvenanceStatement(img, attest.Build{
		Module: "example.com/wc", Package: "example.com/wc", Targets: []string{"linux/arm64"},
		Flags: map[string]any{"tags": ""}, GoVersion: "go1.26.8", BeamVersion: "v2.77.0",
		VCS: "git", Revision: "0123456789abcdef0123456789abcdef01234567", Modified: true, Builder: "https://github.com/beamctl/beamctl@v1.0.0",
		Deps: []attest.Dep{{Path: "github.com/apache/beam/sdks/v2", Version: "v2.77.0", Sum: "h1:Khu2En+0gcYPZ2kuIihfswbzxv/mIHXgzPZ018Oty48="}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prov), `"dirHash1":"2a1bb6127fb481c60f67692e22285fb306f3c6ffe62075e0ccf674d7c3adcb8f"`) {
		t.Errorf("provenance does not carry the module's dirhash: %s", prov)
	}
	sig, err := attest.SignatureStatement(img)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bundle := func(st []byte) []byte {
		b, err := k.Signer("test.key").Sign(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pb, sb := bundle(prov), bundle(sig)
	if got := attest.PredicateOf(pb); got != attest.ProvenancePredicate {
		t.Errorf("PredicateOf(provenance) = %q", got)
	}
	policy := &attest.Policy{Key: k.Public()}
	v, err := policy.Verify(pb, img.Digest)
	if err != nil {
		t.Fatalf("provenance does not verify: %v", err)
	}
	p, err := attest.ReadProvenance(v)
	if err != nil {
		t.Fatal(err)
	}
	if p.WorkerSHA256 != img.WorkerSHA256 || p.ImageDigest != img.Digest || p.Revision != "0123456789abcdef0123456789abcdef01234567" || !p.Modified || p.Builder == "" || p.Platform != "linux/arm64" {
		t.Errorf("provenance read back as %+v", p)
	}
	if _, err := policy.Verify(sb, img.Digest); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}

	// A payload changed after signing: swap the worker's digest.
	var env map[string]any
	if err := json.Unmarshal(pb, &env); err != nil {
		t.Fatal(err)
	}
	tampered := strings.ReplaceAll(string(prov), img.WorkerSHA256, strings.Repeat("0", 64))
	env["dsseEnvelope"].(map[string]any)["payload"] = []byte(tampered)
	tb, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		policy *attest.Policy
		bundle []byte
		digest string
	}{
		"another key":   {&attest.Policy{Key: other.Public()}, pb, img.Digest},
		"another image": {policy, pb, digestOf("other image")},
		"tampered":      {policy, tb, img.Digest},
		"not a bundle":  {policy, []byte(`{"mediaType":"x"}`), img.Digest},
		"truncated":     {policy, pb[:len(pb)/2], img.Digest},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.policy.Verify(c.bundle, c.digest)
			if !errors.Is(err, attest.ErrNotVerified) {
				t.Fatalf("Verify = %v, want ErrNotVerified", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// TestLoadKey reads keys as cosign writes them and refuses the rest in
// one line.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), func(bool) ([]byte, error) { return []byte("s3cret"), nil })
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	encrypted := write("cosign.key", priv)
	pubFile := write("cosign.pub", pub)
	if _, err := attest.LoadKey(encrypted, []byte("s3cret")); err != nil {
		t.Errorf("cosign key with its password: %v", err)
	}
	t.Setenv("BEAMCTL_TEST_KEY", string(priv))
	if _, err := attest.LoadKey("env://BEAMCTL_TEST_KEY", []byte("s3cret")); err != nil {
		t.Errorf("cosign key from the environment: %v", err)
	}
	if _, err := attest.LoadPublicKey(pubFile); err != nil {
		t.Errorf("public key: %v", err)
	}
	for name, c := range map[string]struct {
		load func() error
		want string
	}{
		"wrong password":    {func() error { _, err := attest.LoadKey(encrypted, []byte("nope")); return err }, "password"},
		"missing file":      {func() error { _, err := attest.LoadKey(filepath.Join(dir, "none.key"), nil); return err }, "cosign generate-key-pair"},
		"unset variable":    {func() error { _, err := attest.LoadKey("env://BEAMCTL_TEST_UNSET", nil); return err }, "BEAMCTL_TEST_UNSET is not set"},
		"public as private": {func() error { _, err := attest.LoadKey(pubFile, nil); return err }, "signing key"},
		"private as public": {func() error { _, err := attest.LoadPublicKey(encrypted); return err }, "public key"},
		"garbage":           {func() error { _, err := attest.LoadPublicKey(write("junk.pub", []byte("junk"))); return err }, "public key"},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.load()
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line naming %q", err, c.want)
			}
		})
	}
}

// Package attest makes and checks what a worker image carries to prove
// where it came from: Sigstore bundles of in-toto statements (the image's
// signature, its SLSA provenance, its SBOM), signed with a key or keyless
// through Fulcio, in the form the cosign client verifies.
package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
)

// envPrefix marks a key given in an environment variable rather than a
// file, as cosign spells it: CI systems hand secrets over that way.
const envPrefix = "env://"

// readKey reads the PEM of ref: a file, or env://VAR.
func readKey(ref, what string) ([]byte, error) {
	if name, ok := strings.CutPrefix(ref, envPrefix); ok {
		v, set := os.LookupEnv(name)
		if !set || v == "" {
			return nil, problem.Usagef("export "+name+" with the PEM of the "+what+", or give a file", "%s is not set", name)
		}
		return []byte(v), nil
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		var fix string
		switch {
		case errors.Is(err, os.ErrNotExist):
			fix = "give the path of the " + what + " (cosign generate-key-pair makes one)"
		default:
			fix = "make the " + what + " readable"
		}
		return nil, problem.Usagef(fix, "cannot read the %s %s: %s", what, ref, oneLine(err))
	}
	return data, nil
}

func oneLine(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return problem.FirstLine(err.Error())
}

// Key is a private key that signs statements.
type Key struct {
	priv crypto.Signer
	alg  signature.AlgorithmDetails
	hint []byte
}

var _ sign.Keypair = (*Key)(nil)

// LoadKey reads a private key: cosign's encrypted format (the password
// from password) or a plain PEM (PKCS#8, SEC 1 or PKCS#1). ref is a file
// or env://VAR.
func LoadKey(ref string, password []byte) (*Key, error) {
	data, err := readKey(ref, "signing key")
	if err != nil {
		return nil, err
	}
	pf := func(bool) ([]byte, error) { return password, nil }
	k, err := cryptoutils.UnmarshalPEMToPrivateKey(data, pf)
	if err != nil {
		msg := oneLine(err)
		fix := "give a cosign key (cosign generate-key-pair) or a PEM private key"
		if strings.Contains(msg, "decrypt") {
			fix = "set {SignPassword} to the key's password"
			msg = "cannot be decrypted with the password given"
		}
		return nil, problem.Usagef(fix, "signing key %s %s", ref, msg).About("SignKey")
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, problem.Usagef("give an ECDSA, Ed25519 or RSA key", "signing key %s is a %T, which cannot sign", ref, k).About("SignKey")
	}
	return newKey(s)
}

// NewKey wraps a private key that is already in memory.
func NewKey(s crypto.Signer) (*Key, error) { return newKey(s) }

func newKey(s crypto.Signer) (*Key, error) {
	alg, err := signature.GetDefaultAlgorithmDetails(s.Public())
	if err != nil {
		return nil, problem.Usagef("give an ECDSA P-256/P-384/P-521, Ed25519 or RSA key", "the signing key cannot sign bundles: %s", oneLine(err)).About("SignKey")
	}
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Key{priv: s, alg: alg, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

// GenerateKey makes a new ECDSA P-256 key, the kind cosign makes.
func GenerateKey() (*Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newKey(k)
}

func (k *Key) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }

func (k *Key) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}

func (k *Key) GetHint() []byte { return k.hint }

func (k *Key) GetKeyAlgorithm() string {
	switch k.priv.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case *rsa.PrivateKey:
		return "RSA"
	case ed25519.PrivateKey:
		return "ED25519"
	}
	return ""
}

func (k *Key) GetPublicKey() crypto.PublicKey { return k.priv.Public() }

func (k *Key) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.priv.Public())
	return string(b), err
}

// PublicKeyPEM is the public half, as cosign writes cosign.pub.
func (k *Key) PublicKeyPEM() []byte {
	b, _ := cryptoutils.MarshalPublicKeyToPEM(k.priv.Public())
	return b
}

// SignData signs the digest of data (pure Ed25519 signs data itself) and
// returns the signature and what was signed.
func (k *Key) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.alg.GetHashType()
	msg := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		msg = h.Sum(nil)
	}
	sig, err := k.priv.Sign(rand.Reader, msg, hf)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, msg, nil
}

// PublicKey is a key that verifies what a Key signed.
type PublicKey struct {
	ref      string
	verifier signature.Verifier
}

// LoadPublicKey reads a PEM public key (cosign.pub): a file or env://VAR.
func LoadPublicKey(ref string) (*PublicKey, error) {
	data, err := readKey(ref, "public key")
	if err != nil {
		return nil, err
	}
	fix := "give the public key (cosign.pub) of the key that signed the image"
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, problem.Usagef(fix, "public key %s is not PEM", ref).About("VerifyKey")
	case block.Type != "PUBLIC KEY":
		return nil, problem.Usagef(fix, "public key %s holds a %s, not a PUBLIC KEY", ref, block.Type).About("VerifyKey")
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, problem.Usagef("give the public key (cosign.pub) of the key that signed the image", "public key %s %s", ref, oneLine(err)).About("VerifyKey")
	}
	return newPublicKey(ref, pub)
}

func newPublicKey(ref string, pub crypto.PublicKey) (*PublicKey, error) {
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, problem.Usagef("give an ECDSA, Ed25519 or RSA public key", "public key %s cannot verify: %s", ref, oneLine(err)).About("VerifyKey")
	}
	return &PublicKey{ref: ref, verifier: v}, nil
}

// Public is k's public half as a verifier.
func (k *Key) Public() *PublicKey {
	p, _ := newPublicKey("(the signing key)", k.priv.Public())
	return p
}

// CheckPublicKey checks that ref loads as a public key that verifies.
func CheckPublicKey(ref string) check.Result {
	if _, err := LoadPublicKey(ref); err != nil {
		if p, ok := problem.As(err); ok {
			return check.Failure("verify key", p.Reason, p.Fix)
		}
		return check.Failure("verify key", err.Error(), "give the public key (cosign.pub)")
	}
	return check.Pass("verify key", ref+" loads")
}

// CheckKey checks that ref loads as a private key that signs, with
// password.
func CheckKey(ref string, password []byte) check.Result {
	if _, err := LoadKey(ref, password); err != nil {
		if p, ok := problem.As(err); ok {
			return check.Failure("signing key", p.Reason, p.Fix)
		}
		return check.Failure("signing key", err.Error(), "give a cosign key")
	}
	return check.Pass("signing key", ref+" loads")
}

package main

import (
	"cmp"
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/attest"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/stage/image"
)

// addSignFlags registers how images are signed when pushed and what the
// image a job runs must be signed with.
func addSignFlags(f *pflag.FlagSet) {
	f.String("sign-key", "", "sign the pushed images, their provenance and SBOMs with this private key: a cosign key file or env://VAR (password in BEAMCTL_SIGN_PASSWORD or COSIGN_PASSWORD)")
	f.Bool("sign-keyless", false, "sign with a short-lived Fulcio certificate for the CI's OIDC identity token, logged in Rekor")
	f.String("fulcio-url", attest.PublicFulcio, "Fulcio instance for --sign-keyless")
	f.String("rekor-url", attest.PublicRekor, "Rekor instance for --sign-keyless")
	addVerifyFlags(f)
	declareSettings(f, fields{"sign-key": {"SignKey"}, "sign-keyless": {"SignKeyless"}, "fulcio-url": nil, "rekor-url": nil})
}

// addVerifyFlags registers the trust policy of image signatures.
func addVerifyFlags(f *pflag.FlagSet) {
	f.String("verify-key", "", "run only an image signed by this public key (cosign.pub; a file or env://VAR), with provenance naming this build's worker")
	f.String("certificate-identity", "", "run only an image signed keyless by this identity (an e-mail or a CI workflow URI)")
	f.String("certificate-identity-regexp", "", "like --certificate-identity, a regular expression the identity must match")
	f.String("certificate-oidc-issuer", "", "the OIDC issuer of --certificate-identity, e.g. https://token.actions.githubusercontent.com")
	f.String("trusted-root", "", "Sigstore trusted_root.json for keyless verification; default the public instance's, fetched over TUF")
	declareSettings(f, fields{"verify-key": {"VerifyKey"}, "certificate-identity": {"CertificateIdentity"},
		"certificate-identity-regexp": nil, "certificate-oidc-issuer": {"CertificateOIDCIssuer"}, "trusted-root": {"TrustedRoot"}})
}

// signer is the signer the settings ask for, nil for none.
func (a *app) signer(ctx context.Context) (*attest.Signer, error) {
	key, keyless := a.v.GetString("sign-key"), a.v.GetBool("sign-keyless")
	switch {
	case key != "" && keyless:
		return nil, usagef("--sign-key and --sign-keyless conflict: sign with a key or keyless, not both")
	case key != "":
		k, err := attest.LoadKey(key, []byte(signPassword()))
		if err != nil {
			return nil, err
		}
		return k.Signer(key), nil
	case keyless:
		tok, err := attest.IDToken(ctx, os.Getenv, nil)
		if err != nil {
			return nil, fmt.Errorf("--sign-keyless: %w", err)
		}
		return attest.KeylessSigner(attest.Keyless{IDToken: tok, FulcioURL: a.v.GetString("fulcio-url"), RekorURL: a.v.GetString("rekor-url")})
	}
	return nil, nil
}

// signPassword is the password of an encrypted signing key, from where
// CI keeps it: beamctl's variable, else cosign's.
func signPassword() string {
	return cmp.Or(os.Getenv("BEAMCTL_SIGN_PASSWORD"), os.Getenv("COSIGN_PASSWORD"))
}

// verifyPolicy is the trust policy the settings ask for, nil for none.
func (a *app) verifyPolicy() (*attest.Policy, error) {
	key := a.v.GetString("verify-key")
	id, idRe, issuer := a.v.GetString("certificate-identity"), a.v.GetString("certificate-identity-regexp"), a.v.GetString("certificate-oidc-issuer")
	keyless := id != "" || idRe != "" || issuer != ""
	switch {
	case key != "" && keyless:
		return nil, usagef("--verify-key and --certificate-identity conflict: verify with a key or an identity, not both")
	case key != "":
		pk, err := attest.LoadPublicKey(key)
		if err != nil {
			return nil, err
		}
		return &attest.Policy{Key: pk}, nil
	case keyless:
		if (id == "") == (idRe == "") || issuer == "" {
			return nil, usagef("keyless verification needs --certificate-oidc-issuer and one of --certificate-identity or --certificate-identity-regexp")
		}
		p := &attest.Policy{Identity: id, IdentityRegexp: idRe, Issuer: issuer}
		if tr := a.v.GetString("trusted-root"); tr != "" {
			m, err := attest.LoadTrustedRoot(tr)
			if err != nil {
				return nil, err
			}
			p.TrustedRoot = m
		}
		return p, nil
	}
	return nil, nil
}

// signing fills the signing and verification of an image spec.
func (a *app) signing(ctx context.Context, s *launch.ImageSpec) error {
	var err error
	if s.Sign, err = a.signer(ctx); err != nil {
		return err
	}
	s.Verify, err = a.verifyPolicy()
	return err
}

const verifyLong = `Check a worker image's signatures and provenance: the index (for a
multi-platform image) and each platform image must carry a Sigstore bundle
signed with --key (or keyless by --certificate-identity of
--certificate-oidc-issuer), and each platform image a signed SLSA
provenance. Prints what the provenance proves: each platform's worker
sha256, the source revision, the builder.

Exit status 0 when the image verifies, 1 when it does not.`

func newVerifyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify IMAGE --key FILE | --certificate-identity ID --certificate-oidc-issuer URL",
		Short: "Check a worker image's signatures and provenance",
		Long:  verifyLong,
		Example: `  beamctl verify registry.example.com/team/wordcount@sha256:... --key cosign.pub
  beamctl verify ghcr.io/org/wordcount:v1 --certificate-identity https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer https://token.actions.githubusercontent.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			if k, _ := cmd.Flags().GetString("key"); k != "" {
				a.v.Set("verify-key", k)
			}
			p, err := a.verifyPolicy()
			if err != nil {
				return err
			}
			if p == nil {
				return usagef("verify needs --key FILE, or --certificate-identity and --certificate-oidc-issuer")
			}
			res, err := launch.VerifyImage(cmd.Context(), args[0], p, image.Options{Ref: args[0], Insecure: a.v.GetBool("insecure-registry"), Logger: a.log})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "%s verified with %s\n", res.Image, res.Policy)
			for _, p := range res.Platforms {
				rev := cmp.Or(p.Revision, "unknown")
				if p.Modified {
					rev += " (modified)"
				}
				fmt.Fprintf(a.stdout, "  %s %s worker sha256:%s source %s builder %s\n", p.Platform, p.Digest, p.WorkerSHA256, rev, p.Builder)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("key", "", "public key (cosign.pub) the image must be signed with: a file or env://VAR")
	f.Bool("insecure-registry", false, "allow plain HTTP to registries beyond this machine")
	addVerifyFlags(f)
	declareFields(f, fields{"key": {"VerifyKey"}})
	declareSettings(f, fields{"insecure-registry": {"InsecureRegistry"}})
	return cmd
}

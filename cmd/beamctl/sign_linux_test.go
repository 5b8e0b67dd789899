package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/beamctl/beamctl/attest"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/testenv"
	"github.com/beamctl/beamctl/stage/image"
)

// cosign is the cosign client scripts/test installs: the verifier users
// run, checking what beamctl signs.
func cosign(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	home, _ := os.UserCacheDir()
	p := filepath.Join(home, "beamctl-tools", "bin", "cosign")
	if _, err := os.Stat(p); err != nil {
		testenv.Skip(t, testenv.Tools, "cosign is not installed; install it with: go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5")
	}
	return p
}

// keyPair makes a key pair with cosign generate-key-pair in a directory of
// its own, encrypted with password.
func keyPair(t *testing.T, cosignBin, password string) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(cosignBin, "generate-key-pair")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "COSIGN_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// TestSignedImage signs wordcount's two-platform image as it is staged to
// a real registry and checks the signatures and provenance with the real
// cosign client, with beamctl verify, and as submit's policy against the
// upstream prism job server.
func TestSignedImage(t *testing.T) {
	t.Parallel()
	reg := chrootImageTest(t, "builds wordcount for two platforms")
	cosignBin := cosign(t)
	key, pub := keyPair(t, cosignBin, "correct horse")
	_, otherPub := keyPair(t, cosignBin, "")
	dist, repo, unsigned := stageWordcount(t, reg)
	m, err := build.ReadManifest(dist)
	if err != nil {
		t.Fatal(err)
	}
	prism := startPrism(t)
	noJob := func(t *testing.T, name string) {
		t.Helper()
		r := beamctl(t, "jobs", "list", "--endpoint", prism.Endpoint, "--output", "json")
		if r.code != 0 || strings.Contains(r.stdout, name) {
			t.Errorf("the job server lists a job %s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	refused := func(t *testing.T, job, img, key, want string) {
		t.Helper()
		r := beamctl(t, "submit", dist, "--target", "linux/amd64", "--endpoint", prism.Endpoint, "--environment", "external", "--environment-config", "127.0.0.1:1",
			"--image", img, "--verify-key", key, "--job-name", job, "--", "--input=x", "--output=y")
		if r.code != exitUsage || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, img) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("submit --verify-key %s of %s: exit %d, want %d and one line naming the image and %q:\n%s", key, img, r.code, exitUsage, want, r.stderr)
		}
		noJob(t, job)
	}

	// doctor loads the key and finds where the registry keeps signatures.
	if r := beamctl(t, "doctor", "--image", repo, "--verify-key", pub); !strings.Contains(r.stdout, "ok   verify key") || !strings.Contains(r.stdout, "referrers tag") {
		t.Errorf("doctor --verify-key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := beamctl(t, "doctor", "--verify-key", key); r.code != 1 || !strings.Contains(r.stdout, "holds a ENCRYPTED SIGSTORE PRIVATE KEY, not a PUBLIC KEY") {
		t.Errorf("doctor --verify-key with the private key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Before signing, a policy refuses the image and no job is created.
	refused(t, "unsigned-image", unsigned.Image, pub, "is not signed")

	// Staging again with a key signs the same digests; the password comes
	// from the environment, as in CI.
	cmd := exec.Command(beamctlBinary(t), "stage", dist, "--image", repo+":v1", "--label", "team=data", "--sign-key", key, "--output", "json")
	cmd.Env = append(os.Environ(), "BEAMCTL_SIGN_PASSWORD=correct horse")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("stage --sign-key: %v\n%s", err, stderr.String())
	}
	var signed struct {
		stageJSON
		Signatures int `json:"signatures"`
	}
	if err := json.Unmarshal(out, &signed); err != nil {
		t.Fatal(err)
	}
	// Per platform a signature, a provenance and an SBOM; the index a
	// signature.
	if signed.Digest != unsigned.Digest || signed.Signatures != 7 {
		t.Fatalf("signed stage: digest %s (unsigned %s), %d signatures, want 7", signed.Digest, unsigned.Digest, signed.Signatures)
	}

	// The cosign client verifies the signatures and the provenance as they
	// are. With a key and no transparency log, it is told not to look for
	// one; offline, its trusted root is an empty one.
	trusted := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trusted, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cosignRun := func(args ...string) (string, error) {
		c := exec.Command(cosignBin, append(args, "--insecure-ignore-tlog", "--trusted-root", trusted, "--allow-http-registry")...)
		var errb bytes.Buffer
		c.Stderr = &errb
		o, err := c.Output()
		if err != nil {
			return string(o) + errb.String(), err
		}
		return string(o), nil
	}
	if out, err := cosignRun("verify", "--key", pub, signed.Image); err != nil {
		t.Errorf("cosign verify of the index: %v\n%s", err, out)
	}
	if out, err := cosignRun("verify", "--key", otherPub, signed.Image); err == nil {
		t.Errorf("cosign verify with another key passed:\n%s", out)
	}
	for _, p := range signed.Platforms {
		ref := repo + "@" + p.Digest
		w := manifestWorker(t, m, p.Platform)
		if out, err := cosignRun("verify", "--key", pub, ref); err != nil {
			t.Errorf("cosign verify of %s: %v\n%s", p.Platform, err, out)
		}
		out, err := cosignRun("verify-attestation", "--key", pub, "--type", "slsaprovenance1", ref)
		if err != nil {
			t.Errorf("cosign verify-attestation of %s: %v\n%s", p.Platform, err, out)
			continue
		}
		st := provenanceStatement(t, out)
		if len(st.Subject) != 2 || st.Subject[0].Digest["sha256"] != strings.TrimPrefix(p.Digest, "sha256:") || st.Subject[1].Digest["sha256"] != w.SHA256 {
			t.Errorf("%s provenance subjects %+v, want the image %s and the worker %s", p.Platform, st.Subject, p.Digest, w.SHA256)
		}
		ext := st.Predicate.BuildDefinition.ExternalParameters
		if wk, _ := ext["worker"].(map[string]any); wk["sha256"] != w.SHA256 {
			t.Errorf("%s buildDefinition names worker %v, want sha256 %s", p.Platform, ext["worker"], w.SHA256)
		}
		if ext["module"] != m.Module || ext["package"] != m.Package || ext["platform"] != p.Platform || st.Predicate.BuildDefinition.BuildType != attest.BuildType {
			t.Errorf("%s buildDefinition %+v", p.Platform, st.Predicate.BuildDefinition)
		}
		if len(st.Predicate.BuildDefinition.ResolvedDependencies) < 10 {
			t.Errorf("%s provenance lists %d dependencies, want the module graph", p.Platform, len(st.Predicate.BuildDefinition.ResolvedDependencies))
		}
		if out, err := cosignRun("verify-attestation", "--key", pub, "--type", "spdxjson", ref); err != nil {
			t.Errorf("cosign verify-attestation --type spdxjson of %s: %v\n%s", p.Platform, err, out)
		}
	}

	// beamctl verify: the facts with the right key, exit 1 with another.
	r := beamctl(t, "verify", signed.Image, "--key", pub, "--output", "json")
	if r.code != 0 {
		t.Fatalf("verify: exit %d\n%s", r.code, r.stderr)
	}
	var v launchVerified
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Platforms) != 2 {
		t.Fatalf("verify found %d platforms: %s", len(v.Platforms), r.stdout)
	}
	for _, p := range v.Platforms {
		if w := manifestWorker(t, m, p.Platform); p.WorkerSHA256 != w.SHA256 || p.Builder == "" || !p.SBOM {
			t.Errorf("verify says %s has worker %s, builder %q, SBOM %v; DIST's worker is %s", p.Platform, p.WorkerSHA256, p.Builder, p.SBOM, w.SHA256)
		}
	}
	if r := beamctl(t, "verify", signed.Image, "--key", otherPub); r.code != 1 || !strings.Contains(r.stderr, "does not verify") {
		t.Errorf("verify with another key: exit %d, want 1\n%s", r.code, r.stderr)
	}

	// submit's policy: another key and another build's worker are refused
	// before anything reaches the server; the right key runs the job.
	refused(t, "other-key", signed.Image, otherPub, "does not verify")
	root := imageRoot(t, imageAt(t, repo+"@"+signed.Platforms[0].Digest))
	cf, err := imageAt(t, repo+"@"+signed.Platforms[0].Digest).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startPoolCommand(t, cf.Config.Env, "chroot", "--userspec="+cf.Config.User+":"+cf.Config.User, root, image.BootPath, "--worker_pool")
	submitImageJob(t, prism, root, t.TempDir(), dist, "linux/amd64", "--environment", "external", "--environment-config", addr, "--image", signed.Image, "--verify-key", pub)

	other := filepath.Join(t.TempDir(), "dist")
	if r := beamctl(t, "build", "../../examples/wordcount", "--boot", "--target", "linux/amd64", "--ldflags", "-X=main.imageTest=1", "--out", other); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	r = beamctl(t, "submit", other, "--endpoint", prism.Endpoint, "--environment", "external", "--environment-config", "127.0.0.1:1", "--image", signed.Image, "--verify-key", pub, "--job-name", "other-build", "--", "--input=x", "--output=y")
	if r.code != exitUsage || !strings.Contains(r.stderr, "its signed provenance names worker sha256 "+manifestWorker(t, m, "linux/amd64").SHA256) {
		t.Errorf("submit of another build with the signed image: exit %d\n%s", r.code, r.stderr)
	}
	noJob(t, "other-build")

	// Tampering: the registry's referrers tag of the amd64 image now lists
	// a provenance whose statement was changed after it was signed.
	tamperProvenance(t, repo, signed.Platforms[0].Digest)
	if r := beamctl(t, "verify", signed.Image, "--key", pub); r.code != 1 || !strings.Contains(r.stderr, "provenance") {
		t.Errorf("verify of a tampered provenance: exit %d, want 1\n%s", r.code, r.stderr)
	}
}

type launchVerified struct {
	Platforms []struct {
		Platform     string `json:"platform"`
		WorkerSHA256 string `json:"worker_sha256"`
		Builder      string `json:"builder"`
		SBOM         bool   `json:"sbom"`
	} `json:"platforms"`
}

func manifestWorker(t *testing.T, m *build.Manifest, platform string) build.Binary {
	t.Helper()
	for _, w := range m.Workers() {
		if w.Platform.String() == platform {
			return w
		}
	}
	t.Fatalf("the manifest has no %s worker", platform)
	return build.Binary{}
}

func imageAt(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(mustParse(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type provenance struct {
	Subject []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate struct {
		BuildDefinition struct {
			BuildType            string           `json:"buildType"`
			ExternalParameters   map[string]any   `json:"externalParameters"`
			ResolvedDependencies []map[string]any `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
	} `json:"predicate"`
}

// provenanceStatement reads the statement cosign verify-attestation
// prints: one DSSE envelope per line.
func provenanceStatement(t *testing.T, out string) provenance {
	t.Helper()
	for line := range strings.Lines(out) {
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var p provenance
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Predicate.BuildDefinition.BuildType != "" {
			return p
		}
	}
	t.Fatalf("cosign printed no provenance:\n%s", out)
	return provenance{}
}

// tamperProvenance replaces, in the referrers tag of repo@digest, the
// provenance bundle with a copy whose statement names another worker.
func tamperProvenance(t *testing.T, repo, digest string) {
	t.Helper()
	tag, err := name.NewTag(repo+":"+strings.Replace(digest, ":", "-", 1), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range im.Manifests {
		if d.Annotations["dev.sigstore.bundle.predicateType"] != attest.ProvenancePredicate {
			continue
		}
		layers, err := imageAt(t, repo+"@"+d.Digest.String()).Layers()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var b map[string]any
		if err := json.NewDecoder(rc).Decode(&b); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		env := b["dsseEnvelope"].(map[string]any)
		payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		var st map[string]any
		if err := json.Unmarshal(payload, &st); err != nil {
			t.Fatal(err)
		}
		st["subject"].([]any)[1].(map[string]any)["digest"] = map[string]any{"sha256": strings.Repeat("0", 64)}
		payload, _ = json.Marshal(st)
		env["payload"] = base64.StdEncoding.EncodeToString(payload)
		doc, _ := json.Marshal(b)
		a := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), attest.BundleMediaType)
		a, err = mutate.Append(a, mutate.Addendum{Layer: static.NewLayer(doc, attest.BundleMediaType)})
		if err != nil {
			t.Fatal(err)
		}
		ad, err := a.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag.Context().Digest(ad.String()), a); err != nil {
			t.Fatal(err)
		}
		sz, _ := a.Size()
		im.Manifests[i].Digest, im.Manifests[i].Size = ad, sz
		raw, _ := json.Marshal(im)
		if err := remote.Put(tag, rawIndex(raw)); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s has no provenance in its referrers tag", digest)
}

type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

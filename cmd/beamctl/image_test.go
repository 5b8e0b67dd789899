package main

import (
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// stageJSON is what stage --output json prints.
type stageJSON struct {
	Image         string          `json:"image"`
	Digest        string          `json:"digest"`
	Platforms     []stagePlatform `json:"platforms"`
	BytesUploaded int64           `json:"bytes_uploaded"`
	SBOM          []string        `json:"sbom"`
	Sidecar       string          `json:"sidecar"`
}

type stagePlatform struct {
	Platform, Digest string
	WorkerSHA256     string `json:"worker_sha256"`
}

func stageImage(t *testing.T, args ...string) stageJSON {
	t.Helper()
	r := beamctl(t, append([]string{"stage", "--output", "json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("stage %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var s stageJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("stage output %q: %v", r.stdout, err)
	}
	return s
}

func mustParse(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

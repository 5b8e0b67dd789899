package main

import (
	"encoding/json"
	"testing"
)

// TestVersionJSON checks the release stamps reach version's JSON, as
// goreleaser sets them with -X.
func TestVersionJSON(t *testing.T) {
	t.Parallel()
	oldCommit, oldDate := commit, date
	t.Cleanup(func() { commit, date = oldCommit, oldDate })
	commit, date = "0123456789abcdef", "2026-11-21T00:00:00Z"
	r := beamctl(t, "version", "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Commit != commit || v.Date != date || v.Go == "" || v.Beam == "" || v.OS == "" || v.Arch == "" || v.Version == "" {
		t.Errorf("version %+v", v)
	}
}

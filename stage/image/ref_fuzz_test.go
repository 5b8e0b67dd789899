package image

import (
	"strings"
	"testing"
)

// FuzzParseTag parses --image values nobody checked: each is refused in
// one line, or names a tag whose reference parses back to the same tag.
// --base and inspected references go through parseRef, with the same
// property.
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"registry.example.com/team/pipeline:v1", "localhost:5000/wc", "wc", "127.0.0.1:5000/a/b:c",
		"ghcr.io/x/y@sha256:" + strings.Repeat("a", 64), "UPPER/case", "a:b:c", "", ":tag", "a/", "[::1]:5000/wc:v1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, ref string, insecure bool) {
		tag, err := ParseTag(ref, insecure)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseTag(%q): error spans lines: %q", ref, err)
			}
			return
		}
		again, err := ParseTag(tag.String(), insecure)
		if err != nil || again.String() != tag.String() {
			t.Fatalf("ParseTag(%q) = %q, which parses to %q, %v", ref, tag, again, err)
		}
		if tag.TagStr() == "" || tag.RepositoryStr() == "" {
			t.Fatalf("ParseTag(%q) = %q: no repository or tag", ref, tag)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"gcr.io/distroless/static:nonroot", "localhost:5000/base@sha256:" + strings.Repeat("b", 64),
		"base@sha256:short", "a\nb", "", "x:y@sha256:" + strings.Repeat("c", 64)} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, ref string, insecure bool) {
		r, reason, err := parseRef(ref, insecure)
		if err != nil {
			if e := baseError(ref, reason, "fix"); strings.Contains(e.Error(), "\n") {
				t.Fatalf("parseRef(%q): refusal spans lines: %q", ref, e)
			}
			if e := refError(ref, reason); strings.Contains(e.Error(), "\n") {
				t.Fatalf("parseRef(%q): refusal spans lines: %q", ref, e)
			}
			return
		}
		again, _, err := parseRef(r.String(), insecure)
		if err != nil || again.String() != r.String() {
			t.Fatalf("parseRef(%q) = %q, which parses to %v, %v", ref, r, again, err)
		}
	})
}

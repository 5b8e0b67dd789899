package build

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzReadManifest reads manifest.json files nobody wrote: a DIST is
// handed from job to job in CI and may be truncated or edited. Each is
// refused with a one-line ManifestError, or read into a manifest whose
// files stay inside DIST and that reads back the same once written. The parse is fuzzed, not
// the file system.
func FuzzReadManifest(f *testing.F) {
	good := Manifest{
		Schema: ManifestSchema, Name: "wordcount", Package: "example.com/wc", Module: "example.com/wc",
		BeamVersion: "v2.77.0", GoVersion: "go1.26.0",
		Binaries: []Binary{
			{Role: RoleLauncher, Platform: Platform{OS: "linux", Arch: "amd64"}, File: "wordcount-launcher-linux-amd64", SHA256: strings.Repeat("ab", 32), Size: 10},
			{Role: RoleWorker, Platform: Platform{OS: "linux", Arch: "arm64"}, File: "wordcount-worker-linux-arm64", SHA256: strings.Repeat("cd", 32), Size: 20},
		},
	}
	data, err := good.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte(strings.Replace(string(data), "wordcount-worker", "../worker", 1)))
	f.Add([]byte(strings.Replace(string(data), `"schemaVersion": 1`, `"schemaVersion": 2`, 1)))
	f.Add([]byte(`{"schemaVersion":1,"binaries":[{"role":"worker","file":".hidden","sha256":""}]}`))
	f.Add([]byte(`{"schemaVersion":1,"extra":true}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := "dist"
		m, err := parseManifest(filepath.Join(dir, ManifestFile), dir, data)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a ManifestError", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		for _, b := range m.Binaries {
			if !filepath.IsLocal(b.File) || filepath.Base(b.File) != b.File {
				t.Fatalf("manifest names %q, outside DIST", b.File)
			}
		}
		out, err := m.marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseManifest(filepath.Join(dir, ManifestFile), dir, out)
		if err != nil {
			t.Fatalf("a manifest read from DIST does not read back once written: %v", err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("written and read back, the manifest changed:\n%+v\n%+v", m, back)
		}
	})
}

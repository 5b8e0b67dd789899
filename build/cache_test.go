package build

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestPlanKeys checks that the reuse location changes exactly when the
// binary would differ: a shared location would let one configuration's
// output pass as another's.
func TestPlanKeys(t *testing.T) {
	pkg := &Package{ImportPath: "example.com/p", Dir: "/src/p", Name: "p", Module: Module{Dir: "/src"}, runDir: "/src/p", arg: "."}
	arm64 := Platform{"linux", "arm64", ""}
	base := Options{CacheDir: "/cache"}
	key := func(o Options, role Role, p Platform) string {
		return filepath.Dir(o.plan(pkg, role, p, "/cache/tmp").cacheOut)
	}
	k0 := key(base, RoleWorker, arm64)
	if k0 != key(base, RoleWorker, arm64) {
		t.Fatal("the same inputs gave different keys")
	}
	for name, o := range map[string]Options{
		"tags":    {CacheDir: "/cache", Tags: "x"},
		"ldflags": {CacheDir: "/cache", LDFlags: "-X main.v=1"},
		"gcflags": {CacheDir: "/cache", GCFlags: "-m"},
		"debug":   {CacheDir: "/cache", Debug: true},
		"nostrip": {CacheDir: "/cache", NoStrip: true},
	} {
		if key(o, RoleWorker, arm64) == k0 {
			t.Errorf("%s: key did not change", name)
		}
	}
	if key(base, RoleWorker, Platform{"linux", "amd64", ""}) == k0 {
		t.Error("platform: key did not change")
	}
	if key(base, RoleWorker, Platform{"linux", "amd64", "v3"}) == key(base, RoleWorker, Platform{"linux", "amd64", ""}) {
		t.Error("variant: key did not change")
	}
	if key(base, RoleLauncher, arm64) == k0 {
		t.Error("role: key did not change")
	}
	other := *pkg
	other.ImportPath = "example.com/q"
	if filepath.Dir(base.plan(&other, RoleWorker, arm64, "/cache/tmp").cacheOut) == k0 {
		t.Error("package: key did not change")
	}
}

func TestPlanArgs(t *testing.T) {
	pkg := &Package{ImportPath: "example.com/p", Name: "p", runDir: "/src/p", arg: "."}
	j := (&Options{CacheDir: "/c"}).plan(pkg, RoleWorker, Platform{"linux", "arm64", ""}, "/c/tmp")
	if j.bin.File != "p-worker-linux-arm64" {
		t.Errorf("file = %q", j.bin.File)
	}
	assertArgs(t, j.args, "-trimpath", "-ldflags", "-s -w")
	j = (&Options{CacheDir: "/c"}).plan(pkg, RoleLauncher, Platform{"linux", "amd64", ""}, "/c/tmp")
	for _, a := range j.args {
		if a == "-s -w" {
			t.Error("the launcher is stripped")
		}
	}
	j = (&Options{CacheDir: "/c", Debug: true}).plan(pkg, RoleWorker, Platform{"linux", "arm64", ""}, "/c/tmp")
	assertArgs(t, j.args, "-gcflags", "all=-N -l")
	for _, a := range j.args {
		if a == "-s -w" {
			t.Error("a --debug worker is stripped")
		}
	}
}

func assertArgs(t *testing.T, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, a := range args {
			if a == w {
				found = true
			}
		}
		if !found {
			t.Errorf("args %q lack %q", args, w)
		}
	}
}

func TestToolGCEnv(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name  string
		env   []string
		procs int
		avail int64
		want  []string
	}{
		{name: "plenty of memory", procs: 2, avail: 20 * gib, want: []string{"GOGC=off", "GOMEMLIMIT=4096MiB"}},
		{name: "shared between processes", procs: 6, avail: 12 * gib, want: []string{"GOGC=off", "GOMEMLIMIT=1024MiB"}},
		{name: "too little to matter", procs: 4, avail: 6 * gib},
		{name: "the user's GOGC", env: []string{"GOGC=200"}, procs: 1, avail: 20 * gib},
		{name: "the user's GOMEMLIMIT", env: []string{"GOMEMLIMIT=2GiB"}, procs: 1, avail: 20 * gib},
		{name: "memory unknown", procs: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toolGCEnv(tc.env, tc.procs, tc.avail)
			if !slices.Equal(got, tc.want) {
				t.Errorf("toolGCEnv = %q, want %q", got, tc.want)
			}
		})
	}
}

package build

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupAvailable(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name   string
		cgroup string
		files  map[string]string
		want   int64
		limit  bool
	}{
		{
			name:   "v2 container",
			cgroup: "0::/\n",
			files:  map[string]string{"memory.max": "4294967296\n", "memory.current": "1073741824\n"},
			want:   3 * gib, limit: true,
		},
		{
			name:   "v2 limit on a parent",
			cgroup: "0::/a/b\n",
			files: map[string]string{
				"a/memory.max": "8589934592", "a/memory.current": "1073741824",
				"a/b/memory.max": "max", "a/b/memory.current": "536870912",
			},
			want: 7 * gib, limit: true,
		},
		{
			name:   "v2 without limits",
			cgroup: "0::/a\n",
			files:  map[string]string{"a/memory.max": "max", "a/memory.current": "1073741824"},
		},
		{
			name:   "v1 with the host's path, not mounted here",
			cgroup: "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n",
			files:  map[string]string{"memory/memory.limit_in_bytes": "2147483648", "memory/memory.usage_in_bytes": "536870912"},
			want:   gib + gib/2, limit: true,
		},
		{
			name:   "v1 unlimited beside an empty v2 hierarchy",
			cgroup: "4:memory:/process_api/x\n0::/\n",
			files: map[string]string{
				"memory/process_api/x/memory.limit_in_bytes": "9223372036854771712",
				"memory/memory.limit_in_bytes":               "9223372036854771712",
				"unified/cgroup.procs":                       "",
			},
		},
		{
			name:   "usage above the limit",
			cgroup: "0::/\n",
			files:  map[string]string{"memory.max": "1073741824", "memory.current": "2147483648"},
			want:   0, limit: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "sys")
			for name, content := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			proc := filepath.Join(dir, "cgroup")
			if err := os.WriteFile(proc, []byte(tc.cgroup), 0o644); err != nil {
				t.Fatal(err)
			}
			got, limit := cgroupAvailable(proc, root)
			if got != tc.want || limit != tc.limit {
				t.Errorf("cgroupAvailable = %d, %v; want %d, %v", got, limit, tc.want, tc.limit)
			}
		})
	}
	if _, ok := cgroupAvailable(filepath.Join(t.TempDir(), "none"), t.TempDir()); ok {
		t.Error("a limit without /proc/self/cgroup")
	}
	// The least of MemAvailable and the cgroup's room, read from files
	// that hold still (this machine's change between two reads).
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	meminfo := write("meminfo", "MemTotal:       25165824 kB\nMemAvailable:    8388608 kB\n")
	proc := write("cgroup", "0::/\n")
	for _, tc := range []struct {
		name, max string
		want      int64
	}{
		{"the cgroup has less room", "4294967296", 4 * gib},
		{"meminfo has less", "17179869184", 8 * gib},
	} {
		root := filepath.Join(dir, tc.name)
		write(filepath.Join(tc.name, "memory.max"), tc.max)
		write(filepath.Join(tc.name, "memory.current"), "0")
		if got, ok := availableUnder(meminfo, proc, root); !ok || got != tc.want {
			t.Errorf("%s: availableUnder = %d, %v; want %d", tc.name, got, ok, tc.want)
		}
	}
	if a, ok := availableMemory(); ok && a < 0 {
		t.Errorf("availableMemory = %d on this machine", a)
	}
}

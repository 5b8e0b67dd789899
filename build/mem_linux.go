package build

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// availableMemory is what can be allocated without swapping or reaching a
// cgroup's limit: a container (a CI job's, say) sees the host's meminfo,
// and tools sized by that would be killed at the container's limit.
func availableMemory() (int64, bool) {
	return availableUnder("/proc/meminfo", "/proc/self/cgroup", "/sys/fs/cgroup")
}

// availableUnder is availableMemory from the given meminfo, the process's
// cgroup file and the cgroup mount.
func availableUnder(meminfo, procCgroup, root string) (int64, bool) {
	avail, ok := memAvailable(meminfo)
	if !ok {
		return 0, false
	}
	if c, ok := cgroupAvailable(procCgroup, root); ok {
		avail = min(avail, c)
	}
	return avail, true
}

// memAvailable reads the kernel's MemAvailable estimate.
func memAvailable(meminfo string) (int64, bool) {
	data, err := os.ReadFile(meminfo)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// unlimited is above any real limit: cgroup v1 reports no limit as a
// number near 2^63.
const unlimited = 1 << 60

// cgroupAvailable is the least room left under the memory limits of this
// process's cgroup and its ancestors, cgroup v2 or v1, with sysfs mounted
// at root; false when no limit applies.
func cgroupAvailable(procCgroup, root string) (int64, bool) {
	data, err := os.ReadFile(procCgroup)
	if err != nil {
		return 0, false
	}
	best, found := int64(0), false
	room := func(dir, limitFile, usageFile string) {
		limit, ok := readBytes(filepath.Join(dir, limitFile))
		if !ok || limit >= unlimited {
			return
		}
		usage, _ := readBytes(filepath.Join(dir, usageFile))
		if r := max(limit-usage, 0); !found || r < best {
			best, found = r, true
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			for _, mount := range []string{root, filepath.Join(root, "unified")} {
				walkUp(mount, parts[2], func(dir string) { room(dir, "memory.max", "memory.current") })
			}
		case containsField(parts[1], "memory"):
			walkUp(filepath.Join(root, "memory"), parts[2], func(dir string) {
				room(dir, "memory.limit_in_bytes", "memory.usage_in_bytes")
			})
		}
	}
	return best, found
}

// walkUp calls fn on mount/path and each of its parents up to mount. In a
// container the path may be the host's, which is not there: mount itself
// is then the container's own cgroup.
func walkUp(mount, path string, fn func(dir string)) {
	dir := filepath.Join(mount, filepath.Clean("/"+path))
	if _, err := os.Stat(dir); err != nil {
		dir = mount
	}
	for {
		fn(dir)
		if dir == mount || !strings.HasPrefix(dir, mount) {
			return
		}
		dir = filepath.Dir(dir)
	}
}

func containsField(list, name string) bool {
	for _, f := range strings.Split(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}

// readBytes reads a cgroup file holding a byte count ("max" is none).
func readBytes(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}

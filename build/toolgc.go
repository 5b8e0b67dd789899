package build

import (
	"fmt"
	"strings"
)

// The compiler spends a sixth of its time collecting garbage at Go's
// default GOGC, on heaps of a few hundred megabytes that die with the
// process. Given the memory, beamctl turns the tools' collector off below a
// ceiling (GOMEMLIMIT), which makes the compile of a Beam pipeline's main
// package about 15% faster; it changes neither the outputs nor go's cache
// keys.
const (
	// toolGCMax is the most memory one tool process is let grow to before
	// its collector runs: more buys nothing measurable.
	toolGCMax = 4 << 30
	// toolGCMin is the least share worth relaxing for: compiling a Beam
	// pipeline's main package alone allocates close to 1 GiB when nothing
	// is collected.
	toolGCMin = 1 << 30
)

// toolGCEnv returns the environment entries that relax the collector of
// procs concurrent tool processes, sharing half of avail bytes of free
// memory between them; nil when the user set GOGC or GOMEMLIMIT, or when
// the share would be too small to matter.
func toolGCEnv(env []string, procs int, avail int64) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") {
			return nil
		}
	}
	if procs < 1 || avail <= 0 {
		return nil
	}
	limit := min(avail/2/int64(procs), toolGCMax)
	if limit < toolGCMin {
		return nil
	}
	return []string{"GOGC=off", fmt.Sprintf("GOMEMLIMIT=%dMiB", limit>>20)}
}

//go:build linux

package proc

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkRun measures what a reaper adds to running a process: true(1),
// run directly and through a reaper, from Run's call to its return, and
// until the process has started (start-ns/op). The reaper is this test
// binary, which links little; BEAMCTL_BENCH_REAPER names another program
// built from this module to act as the reaper instead, such as beamctl or
// beamctl-boot, whose package initialisation runs before the reaper's.
func BenchmarkRun(b *testing.B) {
	tru, err := exec.LookPath("true")
	if err != nil {
		b.Skip(err)
	}
	if p := os.Getenv("BEAMCTL_BENCH_REAPER"); p != "" {
		defer func(e func() (string, error)) { executable = e }(executable)
		executable = func() (string, error) { return p, nil }
	}
	for _, bc := range []struct {
		name string
		reap bool
	}{{"direct", false}, {"reaper", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var start time.Duration
			for b.Loop() {
				t0 := time.Now()
				res, err := Run(context.Background(), Cmd{Argv: []string{tru}}, Options{
					Reap:    bc.reap,
					Started: func(int) { start += time.Since(t0) },
				})
				if err != nil || res.Code() != 0 {
					b.Fatalf("Run = %v, %v", res.Err, err)
				}
			}
			b.ReportMetric(float64(start.Nanoseconds())/float64(b.N), "start-ns/op")
		})
	}
}

package launch

import (
	"context"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/capture"
	"github.com/beamctl/beamctl/internal/problem"
)

// Captured is the pipeline a launch would submit, and the build it came
// from.
type Captured struct {
	*capture.Captured
	Manifest *build.Manifest
}

// Capture builds the pipeline, or takes it from Dist, and runs its launcher
// against the capture service alone: the pipeline a run would submit, with
// no job started and no runner or worker pool up. Nothing runs the worker,
// so this machine need not be able to.
func Capture(ctx context.Context, s Spec, d Deps, obs Observer) (*Captured, error) {
	d.defaults()
	switch {
	case s.Endpoint != "" || s.Detach || s.Image != nil || s.Debug != nil:
		return nil, problem.Usagef("drop the settings of where and how the job runs", "a capture starts no job")
	case s.Dataflow != nil:
		return nil, problem.Usagef("drop {Runner}", "a capture runs the launcher against beamctl's own Job API, not Dataflow's")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.defaultDir(); err != nil {
		return nil, err
	}
	s.captureOnly = true
	bins, err := s.binaries(ctx, d, obs)
	if err != nil {
		return nil, err
	}
	c, err := d.Capture(ctx, s.captureOptions(d, bins))
	if err != nil {
		return nil, err
	}
	return &Captured{Captured: c, Manifest: bins.manifest}, nil
}

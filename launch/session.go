package launch

import (
	"context"

	"github.com/beamctl/beamctl/internal/problem"
)

// Session runs one pipeline again and again on one embedded runner and
// worker pool, which stay up between runs: the inner loop of an author
// who edits and reruns. Each run builds and runs the launcher afresh: a
// launcher may read files, flags or services while it constructs the
// graph, so only running it again gives the pipeline a run would.
//
// Runs are one at a time: a Run must have returned before the next starts.
type Session struct {
	spec  Spec
	deps  Deps
	obs   Observer
	dbg   *debugger
	local *localRunner
}

// StartSession checks s, which must build a pipeline for the embedded
// runner, and starts the runner and its pool in the background; Close
// stops them. ctx bounds the session's whole life.
func StartSession(ctx context.Context, s Spec, d Deps, obs Observer) (*Session, error) {
	d.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch {
	case s.Build == nil:
		return nil, problem.Usagef("give the pipeline's package to build", "reruns rebuild the pipeline, but {Dist} is built already")
	case s.Endpoint != "":
		return nil, problem.Usagef("drop {Endpoint}", "reruns keep the embedded runner and its workers up between them, so they cannot go to a job server").About("Endpoint")
	case s.Dataflow != nil:
		return nil, problem.Usagef("rerun on the embedded runner", "reruns keep the embedded runner up between them, so they cannot go to Dataflow")
	}
	if err := s.defaultDir(); err != nil {
		return nil, err
	}
	dbg, err := s.debugger(obs)
	if err != nil {
		return nil, err
	}
	if dbg != nil {
		// One wrapper for the session's pool: each run's workers take the
		// ports the last run's gave back, so a debugger attaches to the
		// same address every time.
		d.Wrapper = dbg.wrapper()
	}
	return &Session{spec: s, deps: d, obs: obs, dbg: dbg, local: s.startLocal(ctx, d)}, nil
}

// Run builds the pipeline, captures it and runs the job to its end, as
// Run does; ctx ending cancels the job (Outcome Interrupted) and waits for
// its workers to exit.
func (ss *Session) Run(ctx context.Context) (*Result, error) {
	s := ss.spec
	if s.Build != nil {
		o := *s.Build
		s.Build = &o
	}
	return s.once(ctx, ss.deps, ss.obs, ss.dbg, ss.local)
}

// Close stops the embedded runner, then the pool and its workers.
func (ss *Session) Close() { ss.local.close() }

package watch

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/launch"
)

// Run is one run of the loop.
type Run struct {
	// N counts the runs from 1.
	N int
	// Changed are the files whose change started the run; none for the
	// first run and for a rerun asked for.
	Changed []string
	// Started is when the run started.
	Started time.Time
	// Result is how the job ended, once it did; nil when no job ran.
	Result *launch.Result
	// Err is why no job ran: the build, the launcher or the submission
	// failed.
	Err error
	// Elapsed runs from the start to the end of the run.
	Elapsed time.Duration
	// Superseded, when set, is why the run was cancelled: the next one
	// was due.
	Superseded *Superseded
}

// Superseded is the cause a run is cancelled with when the sources change
// while it runs, or a rerun is asked for.
type Superseded struct {
	// Changed are the files that changed; none for a rerun asked for.
	Changed []string
}

func (e *Superseded) Error() string {
	if len(e.Changed) == 0 {
		return "a rerun was asked for"
	}
	return Trigger(e.Changed) + " changed"
}

// Trigger words the files of a change: the first's name, and how many
// more.
func Trigger(files []string) string {
	if len(files) == 0 {
		return ""
	}
	s := filepath.Base(files[0])
	if len(files) > 1 {
		s += " and " + plural(len(files)-1, "other")
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// Options configure Loop.
type Options struct {
	// Session runs the pipeline.
	Session *launch.Session
	// Build is the build the session makes: its sources are watched.
	Build build.Options
	// Rerun asks for a run now, as though the sources had changed.
	Rerun <-chan struct{}
	// Debounce is Watcher's; 0 is DefaultDebounce.
	Debounce time.Duration
	// OnStart is told of each run as it starts, OnEnd as it has ended;
	// both are called from Loop's goroutine.
	OnStart, OnEnd func(Run)
	// Logger is told of the watch's progress; nil discards it.
	Logger *slog.Logger
}

// Loop runs the pipeline, then again each time its sources change or a
// rerun is asked for, cancelling the run in progress first (its job, and
// the wait for its workers), until ctx ends. It returns once the last run
// has ended: ctx's cause, or why watching could not start.
func Loop(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, err := o.Build.Sources(ctx)
	if err != nil {
		return err
	}
	w, err := NewWatcher(o.Debounce, log)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Watch(src); err != nil {
		log.Warn("some sources are not watched", "error", err)
	}
	log.Debug("watching", "files", len(src.Files), "dirs", len(src.Dirs))
	var hdrMu sync.Mutex
	hdr := newHeaders(src)

	var refreshes sync.WaitGroup
	defer refreshes.Wait()
	next := Run{N: 1}
	for {
		next.Started = time.Now()
		if o.OnStart != nil {
			o.OnStart(next)
		}
		runCtx, cancel := context.WithCancelCause(ctx)
		done := make(chan Run, 1)
		go func(r Run) {
			r.Result, r.Err = o.Session.Run(runCtx)
			r.Elapsed = time.Since(r.Started)
			done <- r
		}(next)

		var superseded *Superseded
		var ended Run
	wait:
		for {
			select {
			case ended = <-done:
				break wait
			case ch := <-w.Changes():
				if superseded == nil {
					superseded = &Superseded{Changed: ch.Files}
					cancel(superseded)
				} else {
					superseded.Changed = merge(superseded.Changed, ch.Files)
				}
			case <-o.Rerun:
				if superseded == nil {
					superseded = &Superseded{}
					cancel(superseded)
				}
			}
		}
		cancel(nil)
		ended.Superseded = superseded
		hdrMu.Lock()
		stale := next.N > 1 && hdr.changed(next.Changed)
		hdrMu.Unlock()
		if stale {
			// The imports may have changed with the sources: the set
			// watched is read again, once the run no longer needs the
			// CPUs. Until then the last set still tells saves.
			refreshes.Add(1)
			go func() {
				defer refreshes.Done()
				src, err := o.Build.Sources(ctx)
				if err == nil {
					err = w.Watch(src)
				}
				if err != nil {
					if ctx.Err() == nil {
						log.Debug("the sources watched stay as they were", "error", err)
					}
					return
				}
				hdrMu.Lock()
				hdr = newHeaders(src)
				hdrMu.Unlock()
			}()
		}
		if o.OnEnd != nil {
			o.OnEnd(ended)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		next = Run{N: ended.N + 1}
		if superseded != nil {
			next.Changed = superseded.Changed
			continue
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case ch := <-w.Changes():
			next.Changed = ch.Files
		case <-o.Rerun:
		}
	}
}

func merge(a, b []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
}

package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/beamctl/beamctl/build"
)

// buildProgress shows one live line per binary on a terminal, and plain
// log lines otherwise (CI logs, pipes).
type buildProgress struct {
	a     *app
	p     *mpb.Progress
	mu    sync.Mutex
	lines map[string]*buildLine
}

// buildLine has its own lock because mpb calls its decorator from the
// render goroutine while event may be waiting on mpb under bp.mu.
type buildLine struct {
	mu    sync.Mutex
	bar   *mpb.Bar
	state build.State
	text  string
	start time.Time
}

func (a *app) newBuildProgress() *buildProgress {
	bp := &buildProgress{a: a, lines: map[string]*buildLine{}}
	if a.stderrIsTerminal() && !a.v.GetBool("verbose") {
		bp.p = mpb.New(mpb.WithOutput(a.stderr), mpb.WithRefreshRate(120*time.Millisecond), mpb.WithAutoRefresh())
	}
	return bp
}

func (bp *buildProgress) event(e build.Event) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	l := bp.lines[e.File]
	if l == nil {
		l = &buildLine{start: time.Now()}
		bp.lines[e.File] = l
		if bp.p != nil {
			l.bar = bp.p.New(1, mpb.NopStyle(),
				mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-10s %-16s", e.Role, e.Platform))),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					l.mu.Lock()
					defer l.mu.Unlock()
					if l.state == build.Compiling {
						return fmt.Sprintf("%s %s", l.text, time.Since(l.start).Round(time.Second))
					}
					return l.text
				})))
		}
	}
	l.mu.Lock()
	l.state = e.State
	switch e.State {
	case build.Waiting:
		l.text = "waiting"
	case build.Compiling:
		l.start = time.Now()
		l.text = "compiling"
	case build.Cached:
		l.text = fmt.Sprintf("up to date %10s  %s", humanSize(e.Size), e.File)
	case build.Done:
		l.text = fmt.Sprintf("built      %10s  %s  in %s", humanSize(e.Size), e.File, e.Elapsed.Round(100*time.Millisecond))
	case build.Failed:
		l.text = "failed"
	}
	l.mu.Unlock()
	if bp.p == nil {
		switch e.State {
		case build.Compiling:
			bp.a.log.Info(string(e.State), "file", e.File, "platform", e.Platform.String())
		case build.Cached, build.Done:
			bp.a.log.Info(string(e.State), "file", e.File, "platform", e.Platform.String(), "size", e.Size, "elapsed", e.Elapsed.Round(time.Millisecond))
		}
		return
	}
	if e.State == build.Cached || e.State == build.Done || e.State == build.Failed {
		l.bar.SetCurrent(1)
	}
}

// wait lets the live lines draw their final state before anything else is
// printed; lines of builds that never finished are closed where they are.
func (bp *buildProgress) wait() {
	if bp.p == nil {
		return
	}
	bp.mu.Lock()
	for _, l := range bp.lines {
		if !l.bar.Completed() {
			l.mu.Lock()
			if l.state != build.Failed {
				l.text = "stopped"
			}
			l.mu.Unlock()
			l.bar.Abort(false)
		}
	}
	bp.mu.Unlock()
	bp.p.Wait()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
	"github.com/beamctl/beamctl/watch"
)

// errQuit ends a watch the user quit with q.
var errQuit = errors.New("quit")

// watch runs s on the embedded runner again after each change of the
// pipeline's sources, until interrupted (or q on a terminal).
func (a *app) watch(cmd *cobra.Command, s launch.Spec) error {
	ctx, quit := context.WithCancelCause(cmd.Context())
	defer quit(nil)
	defer a.quietPrism()()

	var mu sync.Mutex
	var bp *buildProgress
	obs, stopStaging := a.observer(s)
	defer stopStaging()
	obs.Build = func(e build.Event) {
		mu.Lock()
		defer mu.Unlock()
		if bp != nil {
			bp.event(e)
		}
	}
	sess, err := launch.StartSession(ctx, s, a.launchDeps(), obs)
	if err != nil {
		return launchError(err)
	}
	defer sess.Close()

	rerun, stopKeys := a.terminalKeys(quit)
	defer stopKeys()
	err = watch.Loop(ctx, watch.Options{
		Session: sess,
		Build:   *s.Build,
		Rerun:   rerun,
		Logger:  a.log,
		OnStart: func(r watch.Run) {
			if !a.json && r.N > 1 {
				fmt.Fprintf(a.stderr, "\n[run %d] %s\n", r.N, runTrigger(r))
			}
			mu.Lock()
			bp = a.newBuildProgress()
			mu.Unlock()
		},
		OnEnd: func(r watch.Run) {
			mu.Lock()
			bp.wait()
			bp = nil
			mu.Unlock()
			if ctx.Err() != nil {
				// Interrupted or quit: the run ends with the watch.
				switch {
				case r.Result == nil:
				case a.json:
					line := resultLine(r.Result)
					line.Run, line.Changed = r.N, r.Changed
					_ = a.printJSONLine(line)
				default:
					fmt.Fprintf(a.stderr, "job %s %s after interrupt\n", r.Result.Job.ID, strings.ToLower(r.Result.State.String()))
				}
				return
			}
			a.watchResult(cmd, r, rerun != nil)
		},
	})
	if errors.Is(err, errQuit) {
		return nil
	}
	return err
}

// runTrigger words what started a run.
func runTrigger(r watch.Run) string {
	switch {
	case len(r.Changed) > 0:
		return watch.Trigger(r.Changed) + " changed"
	case r.N == 1:
		return "start"
	}
	return "rerun"
}

// watchResult prints how a run of the watch ended: the job's result as
// run prints it, or why no job ran, then a status line.
func (a *app) watchResult(cmd *cobra.Command, r watch.Run, keys bool) {
	var state, problem string
	switch {
	case r.Result != nil:
		state = r.Result.State.String()
		line := resultLine(r.Result)
		line.Run, line.Changed = r.N, r.Changed
		if r.Superseded != nil {
			line.Superseded = r.Superseded.Error()
		}
		if a.json {
			_ = a.printJSONLine(line)
			break
		}
		if len(r.Result.Metrics) > 0 {
			a.printMetrics(r.Result.Metrics)
		}
		if r.Superseded == nil {
			if err := a.outcomeError(r.Result); err != nil {
				problem, _ = a.render(cmd, err)
			}
		}
	case r.Superseded != nil:
		state = "not run"
		if a.json {
			_ = a.printJSONLine(jobResult{Run: r.N, Changed: r.Changed, Superseded: r.Superseded.Error(), Metrics: []submit.Metric{}})
		}
	default:
		state = "not run"
		msg, _ := a.render(cmd, launchError(r.Err))
		if a.json {
			_ = a.printJSONLine(jobResult{Run: r.N, Changed: r.Changed, Error: msg, Metrics: []submit.Metric{}})
			break
		}
		problem = msg
	}
	if a.json {
		return
	}
	if problem != "" {
		fmt.Fprintln(a.stderr, "beamctl: "+problem)
	}
	status := []string{fmt.Sprintf("[run %d] %s", r.N, runTrigger(r))}
	if r.Result != nil {
		status = append(status, "build "+roundDuration(r.Result.BuildDuration), "run "+roundDuration(r.Result.Duration))
	}
	switch {
	case r.Superseded != nil:
		state = "stopped: " + r.Superseded.Error()
	case r.Result == nil:
		state = "failed"
	}
	status = append(status, state)
	fmt.Fprintln(a.stderr, strings.Join(status, " · "))
	if r.Superseded == nil {
		hint := "watching for changes (Ctrl-C ends)"
		if keys {
			hint = "watching for changes (Enter reruns, q quits)"
		}
		fmt.Fprintln(a.stderr, hint)
	}
}

func roundDuration(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// terminalKeys reads lines from a terminal's stdin: an empty line asks for a
// rerun, q quits. Without a terminal it reads nothing, and the channel is
// nil.
func (a *app) terminalKeys(quit context.CancelCauseFunc) (<-chan struct{}, func()) {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	rerun := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			switch strings.TrimSpace(sc.Text()) {
			case "":
				select {
				case rerun <- struct{}{}:
				default:
				}
			case "q", "quit":
				quit(errQuit)
				return
			}
		}
	}()
	return rerun, func() {
		// A terminal read is pollable: the deadline ends the read the
		// goroutine is blocked in.
		if f.SetReadDeadline(time.Now()) == nil {
			wg.Wait()
			_ = f.SetReadDeadline(time.Time{})
		}
	}
}

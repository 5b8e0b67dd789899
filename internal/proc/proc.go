// Package proc is beamctl's one way of running a child process it is
// responsible for: in a process group of its own, so whatever the child
// starts is signalled with it; killed by the kernel if beamctl dies first
// (Linux); stopped with SIGTERM and then SIGKILL after a grace period; and
// reaped, with what is left of its group killed, on every path.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"time"
)

// Cmd is a process to run.
type Cmd struct {
	Argv           []string
	Env            []string
	Dir            string
	Stdout, Stderr io.Writer
	// ExtraFiles become the process's descriptors 3 and up.
	ExtraFiles []*os.File
}

// Options say how a process is supervised.
type Options struct {
	// Signals are passed on to the process group while it runs.
	Signals <-chan os.Signal
	// Grace is how long the process may take to exit after SIGTERM once ctx
	// is done; 0 kills it at once.
	Grace time.Duration
	// WaitDelay bounds how long output copying may outlast the process, for
	// grandchildren that inherited its output; default 1s.
	WaitDelay time.Duration
	// Started, if set, learns the pid.
	Started func(pid int)
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
	// Guard, if set, kills the process's group should this process die
	// while it runs.
	Guard *Guard
	// Reap runs the process through a reaper (Linux): a small copy of this
	// program that leads the process group, becomes a child subreaper and
	// once the process exits, or is killed, kills and reaps all it left,
	// even descendants that left the group with setsid. Signals and stops
	// reach the process as without one; the exit code is the process's,
	// 128+n when signal n ended it, and Started learns the reaper's pid,
	// the group's id. Elsewhere Reap changes nothing.
	Reap bool
}

// Result is how a process ended.
type Result struct {
	// Err is exec.Cmd.Wait's error: nil for exit status 0.
	Err error
	// Stopped is true when ctx ending stopped the process.
	Stopped bool
}

// Code is the status a shell would report: the exit code, or 128+n when
// signal n ended the process.
func (r Result) Code() int { return exitCode(r.Err) }

// Run starts c and supervises it until it exits. Once ctx is done the group
// gets SIGTERM, and SIGKILL after the grace period. When the process has
// been reaped, whatever is left of its group is killed, and with Reap
// whatever it left outside the group too. The error is about starting; how
// the process ended is in the Result.
func Run(ctx context.Context, c Cmd, o Options) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, errors.New("no command to run")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.WaitDelay <= 0 {
		o.WaitDelay = time.Second
	}
	// The kernel's parent-death signal fires when the thread that started
	// the child exits, not the process: keep this goroutine on its thread
	// for as long as the child lives.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if ctx.Err() != nil {
		return Result{Stopped: true}, nil
	}
	// Killing is separate from stopping, so a stop gets its grace period.
	kill, killNow := context.WithCancel(context.Background())
	defer killNow()
	cmd := exec.CommandContext(kill, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	cmd.Stdout = c.Stdout
	cmd.Stderr = c.Stderr
	cmd.ExtraFiles = c.ExtraFiles
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = o.WaitDelay
	var rp *reaperConn
	if o.Reap {
		var err error
		if rp, err = reapCmd(cmd); err != nil {
			return Result{}, fmt.Errorf("start %s: %w", c.Argv[0], err)
		}
	}
	if rp != nil { // nil where there are no reapers
		defer rp.close()
		// Killing the group would kill the reaper before it could kill
		// what left the group.
		cmd.Cancel = func() error { rp.kill(); return nil }
	}
	if err := cmd.Start(); err != nil {
		if rp != nil {
			// The program that failed is this one, not c's.
			return Result{}, fmt.Errorf("start %s through a reaper: %w", c.Argv[0], err)
		}
		return Result{}, fmt.Errorf("start %s: %w", c.Argv[0], err)
	}
	pid := cmd.Process.Pid
	if rp != nil {
		o.Guard.watchReaper(pid)
	} else {
		o.Guard.Watch(pid)
	}
	defer o.Guard.Forget(pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer killStragglers(pid)
	pass, terminate := func(s os.Signal) error { return signalGroup(pid, s) }, func() error { return termGroup(pid) }
	if rp != nil {
		worker, err := rp.started(pid)
		if err != nil {
			rp.kill()
			<-exited
			return Result{}, fmt.Errorf("start %s: %w", c.Argv[0], err)
		}
		logger.Debug("process started", "pid", worker, "reaper", pid, "command", c.Argv)
		pass, terminate = rp.signal, rp.terminate
	} else {
		logger.Debug("process started", "pid", pid, "command", cmd.Args)
	}
	if o.Started != nil {
		o.Started(pid)
	}

	var res Result
	done := ctx.Done()
	var graceC <-chan time.Time
	for {
		select {
		case err := <-exited:
			res.Err = err
			return res, nil
		case s := <-o.Signals:
			logger.Debug("passing on signal", "pid", pid, "signal", s)
			_ = pass(s)
		case <-done:
			done, res.Stopped = nil, true
			if o.Grace <= 0 {
				killNow()
				continue
			}
			_ = terminate()
			t := time.NewTimer(o.Grace)
			defer t.Stop()
			graceC = t.C
		case <-graceC:
			graceC = nil
			logger.Debug("process ignored SIGTERM, killing it", "pid", pid)
			killNow()
		}
	}
}

// ExitCode is the status a shell would report for a process that ended
// with err (from exec.Cmd.Wait).
func ExitCode(err error) int { return exitCode(err) }

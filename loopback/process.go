package loopback

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"time"
)

// proc is a process to run in a process group of its own, so an emulator
// and whatever the worker starts are signalled together.
type proc struct {
	argv           []string
	env            []string
	dir            string
	stdout, stderr io.Writer
}

// runGroup runs p until it exits. Each signal from sigs is passed on to its
// group; once ctx is done the group gets SIGTERM, and SIGKILL after grace.
// started, if set, learns the pid. It returns cmd.Wait's error and whether
// ctx stopped the process.
func runGroup(ctx context.Context, p proc, sigs <-chan os.Signal, grace time.Duration, logger *slog.Logger, started func(pid int)) (stopped bool, err error) {
	// The kernel's parent-death signal fires when the thread that started
	// the child exits, not the process: keep this goroutine on its thread
	// for as long as the child lives.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if ctx.Err() != nil {
		return true, nil
	}
	// Killing is separate from stopping, so a stop gets its grace period.
	kill, killNow := context.WithCancel(context.Background())
	defer killNow()
	cmd := exec.CommandContext(kill, p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// Output copying ends when every holder of the pipe has exited; a
	// grandchild keeping it open must not hold the caller.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start: %w", err)
	}
	pid := cmd.Process.Pid
	logger.Debug("process started", "pid", pid, "command", cmd.Args)
	if started != nil {
		started(pid)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer killStragglers(pid)

	done := ctx.Done()
	var graceC <-chan time.Time
	for {
		select {
		case err := <-exited:
			return stopped, err
		case s := <-sigs:
			logger.Debug("passing on signal", "pid", pid, "signal", s)
			_ = signalGroup(pid, s)
		case <-done:
			done, stopped = nil, true
			_ = termGroup(pid)
			t := time.NewTimer(grace)
			defer t.Stop()
			graceC = t.C
		case <-graceC:
			graceC = nil
			logger.Debug("process ignored SIGTERM, killing it", "pid", pid)
			killNow()
		}
	}
}

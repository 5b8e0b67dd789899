// Command beamctl takes an Apache Beam Go pipeline from source to a
// running job: it cross-compiles the launcher and workers, stages the
// worker and submits the job.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beamctl/beamctl/cmd/internal/bootcmd"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/spf13/cobra"
)

// Exit codes, as documented in the README.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitCancelled   = 3
	exitInterrupted = 130
)

func main() {
	args := os.Args[1:]
	if boot := bootcmd.Args(os.Args); boot != nil {
		args = boot
	}
	os.Exit(run(args, os.Stdin, os.Stdout, os.Stderr))
}

// run executes beamctl with args and returns the exit code. Signals
// cancel the context, so every command unwinds and cleans up; a second
// interrupt also ends the waits that outlive the first (for a cancelled job
// to stop), and gives the cleanup unwindBound before the process exits.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	abort, stopWaits := context.WithCancelCause(context.Background())
	defer stopWaits(nil)
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopInterrupts := interrupts(sigs, cancel, stopWaits, stderr, unwindBound, os.Exit)
	defer func() {
		signal.Stop(sigs)
		stopInterrupts()
	}()

	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, digests: digest.NewCache(), abort: abort}
	root := newRootCmd(a)
	root.SetArgs(args)
	cmd := root
	err := unknownCommand(root, args)
	if err == nil {
		cmd, err = root.ExecuteContextC(ctx)
	}
	if a.log != nil {
		a.log.Debug("resources", "peak_rss_mib", fmt.Sprintf("%.1f", float64(peakRSS())/(1<<20)))
	}
	if err == nil {
		return a.exitCode
	}
	var intr *interrupted
	if errors.As(context.Cause(ctx), &intr) {
		fmt.Fprintf(stderr, "beamctl: interrupted (%v)\n", intr.sig)
		return exitInterrupted
	}
	var exit *bootcmd.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	msg, code := a.render(cmd, err)
	if msg != "" {
		fmt.Fprintln(stderr, "beamctl: "+msg)
	}
	return code
}

// render words an error of cmd for its final line, and gives the exit
// code it maps to; an empty message means the command said it already.
func (a *app) render(cmd *cobra.Command, err error) (string, int) {
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.msg, ce.code
	}
	msg := strings.TrimRight(problem.Render(err, wording(cmd)), "\n")
	var inv interface{ Invalid() bool }
	if errors.As(err, &inv) && inv.Invalid() {
		return msg + a.settingSource(cmd, err), exitUsage
	}
	return msg, exitFailure
}

// settingSource says, for a usage error about one setting's value, where
// the value came from when that is not the command line: a value from
// beamctl.yaml or a BEAMCTL_ variable is fixed there.
func (a *app) settingSource(cmd *cobra.Command, err error) string {
	if a.cfg == nil || cmd == nil {
		return ""
	}
	var key string
	var ue *usageError
	if errors.As(err, &ue) && ue.setting != "" {
		key = ue.setting
	} else if field, ok := problem.KeyOf(err); ok {
		if key, ok = flagOf(cmd, field); !ok {
			return ""
		}
	}
	if _, ok := a.keys[key]; !ok {
		return ""
	}
	switch src := a.cfg.source(cmd.Flags(), key); {
	case src == "default", strings.HasPrefix(src, "flag "):
		return ""
	default:
		return " (" + key + " is set by " + src + ")"
	}
}

// unwindBound is how long a command may take to clean up (child
// processes, temporary directories) after a second interrupt.
const unwindBound = 10 * time.Second

// interrupts handles the signals on sigs until the returned func is
// called, which waits for it to end. The first cancels the command; the
// second aborts the waits that outlive the first and gives the command
// bound to return before exit ends the process; a third ends it at once.
func interrupts(sigs <-chan os.Signal, cancel, abort context.CancelCauseFunc, stderr io.Writer, bound time.Duration, exit func(int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var late <-chan time.Time
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-late:
				fmt.Fprintf(stderr, "beamctl: cleanup did not end within %v of the second interrupt; exiting\n", bound)
				exit(exitInterrupted)
				return
			case sig := <-sigs:
				switch n {
				case 1:
					cancel(&interrupted{sig})
				case 2:
					fmt.Fprintln(stderr, "beamctl: interrupted again: not waiting for the job any longer; cleaning up (interrupt once more to exit at once)")
					abort(&interrupted{sig})
					t := time.NewTimer(bound)
					defer t.Stop()
					late = t.C
				default:
					fmt.Fprintln(stderr, "beamctl: interrupted a third time: exiting now")
					exit(exitInterrupted)
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

type interrupted struct{ sig os.Signal }

func (i *interrupted) Error() string { return "interrupted by " + i.sig.String() }

// codeError carries an exit code other than the one the error's kind
// implies; an empty msg means the command already said what happened.
type codeError struct {
	code int
	msg  string
}

func (e *codeError) Error() string { return e.msg }

// usageError is wrong command-line usage: exit 2.
type usageError struct {
	msg string
	// setting is the setting whose value is at fault, if one is.
	setting string
	// err is a library's error that is the user's to fix.
	err error
}

func (e *usageError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}
func (e *usageError) Unwrap() error { return e.err }
func (e *usageError) Invalid() bool { return true }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// badValue is a usage error about the value of one setting, key.
func badValue(key, format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...), setting: key}
}

package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/beamctl/beamctl/internal/proc"
)

// Launcher output kept for error messages: the head holds a failed flag
// parse's complaint (before its long usage text), the tail holds the last
// words of anything else.
const (
	outputHeadBytes = 1 << 10
	outputTailBytes = 3 << 10
)

// waitDelay bounds how long output copying may outlast the launcher, for
// grandchildren that inherited its output and keep running.
const waitDelay = 2 * time.Second

type launcherRun struct {
	argv           []string
	env            []string
	stdout, stderr io.Writer
	// timeout bounds the run; 0 is no bound.
	timeout time.Duration
	// until, if set, stops the launcher when it is closed.
	until <-chan struct{}
}

type launcherResult struct {
	err      error
	startErr bool
	timedOut bool
	// stopped is true when until stopped the launcher.
	stopped bool
}

// stopGrace is how long a launcher stopped by until may take to exit after
// SIGTERM: a debugger uses it to end the program it debugs.
const stopGrace = 5 * time.Second

// runLauncher runs the launcher to completion and kills it, with whatever
// it started, when it exits, times out or ctx ends.
func runLauncher(ctx context.Context, r launcherRun) launcherResult {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if r.timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, r.timeout, errLauncherTimeout)
		defer stop()
	}
	grace := time.Duration(0)
	if r.until != nil {
		grace = stopGrace
		go func() {
			select {
			case <-r.until:
				cancel(errSubmitted)
			case <-ctx.Done():
			}
		}()
	}
	res, err := proc.Run(ctx, proc.Cmd{
		Argv:   r.argv,
		Env:    append(os.Environ(), r.env...),
		Stdout: r.stdout,
		Stderr: r.stderr,
	}, proc.Options{WaitDelay: waitDelay, Grace: grace})
	if err != nil {
		return launcherResult{err: err, startErr: true}
	}
	cause := context.Cause(ctx)
	return launcherResult{err: res.Err, timedOut: errors.Is(cause, errLauncherTimeout), stopped: errors.Is(cause, errSubmitted)}
}

// errSubmitted stops a launcher that has handed over its pipeline.
var errSubmitted = errors.New("launcher submitted its pipeline")

var errLauncherTimeout = errors.New("launcher timed out")

// excerpt keeps the first and the last bytes written to it.
type excerpt struct {
	mu         sync.Mutex
	head, tail []byte
	headMax    int
	tailMax    int
	dropped    int64
}

func newExcerpt(head, tail int) *excerpt { return &excerpt{headMax: head, tailMax: tail} }

func (e *excerpt) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(p)
	if room := e.headMax - len(e.head); room > 0 {
		k := min(room, len(p))
		e.head = append(e.head, p[:k]...)
		p = p[k:]
	}
	e.tail = append(e.tail, p...)
	if over := len(e.tail) - e.tailMax; over > 0 {
		e.dropped += int64(over)
		e.tail = append(e.tail[:0], e.tail[over:]...)
	}
	return n, nil
}

func (e *excerpt) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dropped == 0 {
		return string(e.head) + string(e.tail)
	}
	// Cut at line boundaries so no half line is shown.
	head, tail, dropped := e.head, e.tail, e.dropped
	if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
		dropped += int64(len(head) - i - 1)
		head = head[:i]
	}
	if i := bytes.IndexByte(tail, '\n'); i >= 0 && i < len(tail)-1 {
		dropped += int64(i + 1)
		tail = tail[i+1:]
	}
	return fmt.Sprintf("%s\n[... %d bytes ...]\n%s", head, dropped, tail)
}

func teeTo(w io.Writer, t *excerpt) io.Writer {
	if w == nil {
		return t
	}
	return io.MultiWriter(w, t)
}

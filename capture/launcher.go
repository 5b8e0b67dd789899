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
	path           string
	args           []string
	env            []string
	stdout, stderr io.Writer
	timeout        time.Duration
}

type launcherResult struct {
	err      error
	startErr bool
	timedOut bool
}

// runLauncher runs the launcher to completion and kills it, with whatever
// it started, when it exits, times out or ctx ends.
func runLauncher(ctx context.Context, r launcherRun) launcherResult {
	ctx, cancel := context.WithTimeoutCause(ctx, r.timeout, errLauncherTimeout)
	defer cancel()
	res, err := proc.Run(ctx, proc.Cmd{
		Argv:   append([]string{r.path}, r.args...),
		Env:    append(os.Environ(), r.env...),
		Stdout: r.stdout,
		Stderr: r.stderr,
	}, proc.Options{WaitDelay: waitDelay})
	if err != nil {
		return launcherResult{err: err, startErr: true}
	}
	return launcherResult{err: res.Err, timedOut: errors.Is(context.Cause(ctx), errLauncherTimeout)}
}

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

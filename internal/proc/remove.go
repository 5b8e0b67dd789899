package proc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// envRemove marks a process started by RemoveOnExit; its value is the JSON
// list of paths to remove.
const envRemove = "BEAMCTL_INTERNAL_REMOVE_ON_EXIT"

// The remover is this program started again: every program that links this
// package (beamctl, beamctl-boot, test binaries) can be one.
func init() {
	if paths, ok := os.LookupEnv(envRemove); ok {
		os.Exit(remover(paths, os.Stdin))
	}
}

// remover waits until the pipe on in is closed, which happens when the
// process that started it ends in any way, then removes the paths.
func remover(list string, in io.Reader) int {
	var paths []string
	if err := json.Unmarshal([]byte(list), &paths); err != nil {
		return 2
	}
	_, _ = io.Copy(io.Discard, in)
	code := 0
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			code = 1
		}
	}
	return code
}

// Remover removes paths once this process ends.
type Remover struct {
	w    *os.File
	cmd  *exec.Cmd
	once sync.Once
	err  error
}

// RemoveOnExit has paths removed when this process ends, however it ends:
// a runner may SIGKILL it, which leaves no chance to clean up. A small
// process of its own (this program, started again) holds the read end of a
// pipe whose write end only this process has; the kernel closes it when
// this process dies, and the remover then removes the paths. It runs in a
// process group of its own, so a signal to this process's group leaves it be,
// and holds no output of this process open.
//
// Close removes the paths now, and returns once they are gone.
func RemoveOnExit(paths ...string) (*Remover, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to watch over %v: %w", paths, err)
	}
	list, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	// Both ends are close-on-exec: children started later do not inherit
	// the write end and so cannot keep the remover waiting.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envRemove+"="+string(list))
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.SysProcAttr = detachedAttr()
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the remover of %v: %w", paths, err)
	}
	return &Remover{w: w, cmd: cmd}, nil
}

// Close has the remover remove the paths and waits until it has.
func (r *Remover) Close() error {
	r.once.Do(func() {
		r.w.Close()
		err := r.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("removing temporary files failed (exit %d)", ee.ExitCode())
		}
		r.err = err
	})
	return r.err
}

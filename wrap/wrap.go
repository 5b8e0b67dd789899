// Package wrap is how a worker process is started on a machine: natively,
// under qemu-user when it is built for another architecture (Emulated), or
// under Delve's headless server for a debugger to attach (Debug); and
// supervised so that nothing it leaves outlives it (Launch.Run). beamctl
// and beamctl-boot both start workers through it: the contract (package
// boot) prepares a Launch, a Wrapper rewrites it, and Launch.Run runs it.
//
// Launch.Run runs every worker through the per-worker reaper: that a
// worker needs one is decided here, with the rest of how a worker starts.
// How a reaper works is not: the reaper process (internal/reaper) and its
// supervising side (internal/proc's Reap) are the two ends of one protocol
// and stay together below this package. The reaper remains a package of
// its own that imports only the standard library, so that its init runs
// before the rest of a large program has initialised and each worker's
// start costs little more than a fork and exec.
//
// Like the contract, the package depends only on the standard library,
// gRPC and Beam's model protos (for the relay that holds a debugged
// worker's control stream), so that beamctl-boot stays small.
package wrap

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/beamctl/beamctl/internal/proc"
)

// Launch is a worker ready to start.
type Launch struct {
	// ID is the runner's id for the worker.
	ID string
	// Binary is the worker binary; OS and Arch its platform, empty when it
	// is not an ELF binary (a script, or this platform's own format).
	Binary   string
	OS, Arch string
	// Argv is the command line; a Wrapper may put a program before the
	// binary or change the arguments.
	Argv []string
	// Files are open files the worker gets as descriptors 3 and up; the
	// first, if any, is the binary Argv names as /proc/self/fd/3.
	Files []*os.File
	// Env is what the contract adds to the worker's environment.
	Env map[string]string
	// Cleanup undoes, last first, what wrappers set up for the worker;
	// Close runs it once the worker has exited or could not start.
	Cleanup []func()
}

// Wrapper decides how a worker process is started on this machine: as it
// is, under an emulator, under a debugger.
type Wrapper interface {
	Wrap(ctx context.Context, l *Launch) error
}

// WrapperFunc is a Wrapper.
type WrapperFunc func(ctx context.Context, l *Launch) error

// Wrap calls f.
func (f WrapperFunc) Wrap(ctx context.Context, l *Launch) error { return f(ctx, l) }

// Run starts the worker and supervises it until it exits, as proc.Run
// does with o: in dir, its output to stdout and stderr, its environment
// this process's with Env set over it.
//
// The worker runs through a reaper whatever o.Reap says: a worker may
// leave programs running that leave its process group, as daemons do, and
// only a reaper finds them, when the worker exits, is stopped or its
// supervisor dies. The reaper passes descriptors on as they are, so the
// binary Argv names as descriptor 3 is still the file that was checked.
func (l *Launch) Run(ctx context.Context, dir string, stdout, stderr io.Writer, o proc.Options) (proc.Result, error) {
	o.Reap = true
	return proc.Run(ctx, proc.Cmd{
		Argv:       l.Argv,
		Env:        workerEnv(os.Environ(), l.Env),
		Dir:        dir,
		Stdout:     stdout,
		Stderr:     stderr,
		ExtraFiles: l.Files,
	}, o)
}

// Close runs the launch's cleanups, once.
func (l *Launch) Close() {
	cs := l.Cleanup
	l.Cleanup = nil
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, f := range l.Files {
		f.Close()
	}
	l.Files = nil
}

func workerEnv(base []string, set map[string]string) []string {
	env := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Package reaper is the process through which internal/proc runs a
// process it is to reap (Linux): a copy of the running program, started
// again with Env set, that becomes a child subreaper, runs the process as
// its child in its own process group, passes stop signals on to that
// group, and once the process has exited, or the supervisor says so or
// dies, kills and reaps everything the process left, including children
// that left the group with setsid, which the kernel hands to a subreaper
// when their parent dies. It then exits with the process's exit code,
// 128+n when signal n ended it.
//
// It starts once per worker, so it imports only what is initialised early
// in a large program: its init runs before most of the program's packages
// are initialised, and a run costs little more than a fork and exec.
package reaper

// Env marks a process started as a reaper. Its value is the number of
// descriptors beyond stdio the process gets, as the reaper has them; the
// reaper's socket comes next. Its arguments are the program's own path,
// the path of the program to run, and that program's arguments from its
// name on.
//
// On the socket the reaper writes one line once it has started the
// process: the process's pid, or an operation and an errno when it could
// not. The end of the socket orders it to kill everything and exit.
const Env = "BEAMCTL_INTERNAL_REAPER"

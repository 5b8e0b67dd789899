package reaper

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func init() {
	if files, ok := os.LookupEnv(Env); ok {
		os.Exit(run(files, os.Args))
	}
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER, which package syscall
// does not name.
const prSetChildSubreaper = 36

// forwarded are the signals the reaper passes on to the process's group
// rather than die of them.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// run is the reaper: args are this program, the path of the program to
// run and its arguments; files is how many descriptors beyond stdio it
// gets. It returns the process's exit code, 128+n when signal n ended it.
func run(files string, args []string) int {
	// Before anything else: a stop signal that arrives while the process
	// starts is then passed on instead of ending the reaper, and no child's
	// exit goes unnoticed.
	ignored := map[os.Signal]bool{}
	for _, s := range forwarded {
		ignored[s] = signal.Ignored(s)
	}
	sigs := make(chan os.Signal, len(forwarded))
	signal.Notify(sigs, forwarded...)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)

	n, err := strconv.Atoi(files)
	if err != nil || n < 0 || len(args) < 3 {
		return 2
	}
	syscall.CloseOnExec(3 + n)
	ctl := os.NewFile(uintptr(3+n), "reaper")
	worker, op, err := start(args[1], args[2:], n, ignored, sigs)
	if err != nil {
		errno, _ := err.(syscall.Errno)
		ctl.Write([]byte(op + " " + strconv.Itoa(int(errno)) + "\n"))
		return 127
	}
	ctl.Write([]byte(strconv.Itoa(worker) + "\n"))

	// The end of the socket is the order to kill everything: the
	// supervisor closes it to kill the process, and the kernel when the
	// supervisor dies.
	killNow := make(chan struct{})
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := ctl.Read(b); err != nil {
				close(killNow)
				return
			}
		}
	}()

	self := os.Getpid()
	leader := syscall.Getpgrp() == self
	code := 0
	killing := false
	for {
		select {
		case s := <-sigs:
			if !killing {
				forward(s.(syscall.Signal), worker, leader, sigs)
			}
		case <-killNow:
			killNow = nil
			killing = true
			killChildren(self)
		case <-chld:
		}
		// This process has no children of its own besides the process, so
		// reaping any child takes nothing from anyone.
		reaped := false
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				// ECHILD: nothing is left, and nothing can become this
				// process's child any more.
				return code
			}
			if pid == 0 {
				break
			}
			reaped = true
			if pid == worker {
				code = exitCode(ws)
				killing = true
			}
		}
		// Children of the children killed become this process's, and are
		// killed in turn once their parent has been reaped.
		if killing && reaped {
			killChildren(self)
		}
	}
}

// start makes this process a child subreaper where it can and starts the process with
// stdio and n more descriptors as they are here. It returns the process's
// pid, or the operation that failed and why.
func start(path string, argv []string, n int, ignored map[os.Signal]bool, sigs chan os.Signal) (int, string, error) {
	// qemu-user does not emulate this prctl (EINVAL): the worker then runs
	// without it, and what leaves its process group is not followed, as on
	// systems without subreapers. The group is still killed and reaped.
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	files := make([]uintptr, 3+n)
	for i := range files {
		files[i] = uintptr(i)
		// A descriptor the supervisor left closed stays closed.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(i), syscall.F_GETFD, 0); errno != 0 {
			files[i] = ^uintptr(0)
		}
	}
	env := os.Environ()
	for i, e := range env {
		if len(e) > len(Env) && e[:len(Env)+1] == Env+"=" {
			env = append(env[:i], env[i+1:]...)
			break
		}
	}
	// A signal ignored here was ignored by the supervisor: the process
	// inherits that, as it would without a reaper.
	var restore []os.Signal
	for s, ign := range ignored {
		if ign {
			signal.Ignore(s)
			restore = append(restore, s)
		}
	}
	// init runs on the main thread, which lives as long as this process,
	// so the parent-death signal, tied to the thread that forks, holds:
	// should the reaper be killed outright, the process dies with it.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if len(restore) > 0 {
		signal.Notify(sigs, restore...)
	}
	if err != nil {
		return 0, "fork/exec", err
	}
	return pid, "", nil
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// forward passes s on to the process group this process leads. Ignoring s
// while sending it keeps this process's own copy from coming back as
// another signal to pass on: the kernel drops a signal ignored when it is
// sent, and the thread sending it, the main one, is the group leader the
// kernel checks.
func forward(s syscall.Signal, worker int, leader bool, sigs chan os.Signal) {
	if !leader {
		_ = syscall.Kill(worker, s)
		return
	}
	signal.Ignore(s)
	_ = syscall.Kill(0, s)
	signal.Notify(sigs, s)
}

// killChildren kills every child of this process.
func killChildren(self int) {
	for _, pid := range children(self) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// children lists the processes whose parent is self, from /proc: the
// per-thread children files are not in every kernel.
func children(self int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var kids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err == nil && parentOf(stat) == self {
			kids = append(kids, pid)
		}
	}
	return kids
}

// parentOf reads the parent's pid from a /proc/PID/stat line,
// "PID (COMM) STATE PPID ...", whose COMM may hold any byte.
func parentOf(stat []byte) int {
	i := len(stat) - 1
	for i >= 0 && stat[i] != ')' {
		i--
	}
	field := 0
	ppid := 0
	for _, c := range stat[i+1:] {
		switch {
		case c == ' ':
			if field == 2 {
				return ppid
			}
			field++
		case field == 2 && '0' <= c && c <= '9':
			ppid = ppid*10 + int(c-'0')
		}
	}
	return -1
}

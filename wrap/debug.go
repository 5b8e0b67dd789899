package wrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/problem"
)

// Delve, the Go debugger, as beamctl runs it: the version its tests run
// and its install line name, which supports the Go release beamctl is
// built with.
const (
	DelveVersion = "v1.27.2"
	DelvePackage = "github.com/go-delve/delve/cmd/dlv"
)

// DelveInstall is the command that installs the Delve beamctl is tested
// with.
const DelveInstall = "go install " + DelvePackage + "@" + DelveVersion

// FindDelve returns the dlv executable to run: path when given, else dlv on
// PATH. Errors name the setting that gives the path as {Dlv}.
func FindDelve(path string) (string, error) {
	fix := "install it with `" + DelveInstall + "`, or give its path with {Dlv}"
	if path == "" {
		p, err := exec.LookPath("dlv")
		if err != nil {
			return "", problem.Usagef(fix, "Delve (dlv) is not on PATH").Wrap(err)
		}
		return p, nil
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", problem.Usagef(fix, "{Dlv} %s is not an executable", path).About("Dlv").Wrap(err)
	}
	return p, nil
}

// DelveCommand is the command line that runs argv under Delve's headless
// server, listening on addr for clients of its JSON-RPC (version 2) and DAP
// APIs: editors and dlv connect alike. With wait, the program stays stopped
// at its first instruction until a client continues it; without, it runs at
// once. multi keeps the server up across clients, and the program running
// when one leaves; without it, the server ends (and the program with it)
// when its one client disconnects.
func DelveCommand(dlv, addr string, wait, multi bool, argv []string) []string {
	cmd := []string{dlv, "exec", "--headless", "--api-version=2", "--listen=" + addr}
	if multi {
		cmd = append(cmd, "--accept-multiclient")
	}
	if !wait {
		cmd = append(cmd, "--continue")
	}
	// A binary named /proc/self/fd/3 is the verified open file the worker
	// is started from. Delve is the process that receives descriptor 3, so
	// the name means the same file to it: it reads the file's symbols
	// through it, and the program it starts inherits the descriptor (it is
	// not close-on-exec), so executing the name there runs that very file.
	// Nothing swapped in at the file's path can run instead.
	cmd = append(cmd, argv[0])
	if len(argv) > 1 {
		cmd = append(append(cmd, "--"), argv[1:]...)
	}
	return cmd
}

// Debug runs each worker under Delve's headless server, on addresses taken
// from Ports, so that a debugger can stop it in its DoFns.
type Debug struct {
	// Delve is the dlv executable (FindDelve).
	Delve string
	// Ports hand each worker its debugger's address.
	Ports *Ports
	// Wait starts each worker stopped until a debugger client continues it.
	// The runner is meanwhile told the worker is connected: see Wrap.
	Wait bool
	// OnListen, if set, is told of each worker's debugger before the worker
	// starts.
	OnListen func(DebugTarget)
	// AnyUser lets local clients of any user attach, not only the worker's
	// own user's: a port-forward into a container arrives as the runtime's
	// user, not the image's.
	AnyUser bool
}

// DebugTarget is a program that runs under a debugger.
type DebugTarget struct {
	// ID is the runner's id for the worker; empty for a launcher.
	ID string
	// Address is where the debugger listens.
	Address string
	// Wait is true when the program waits for a client to continue it.
	Wait bool
}

// Wrap puts the worker under Delve. Delve cannot debug a program that
// qemu-user runs, so a worker for another platform is refused.
//
// A waiting worker cannot connect to the runner until someone attaches and
// continues it, and a runner may give up on a worker that does not connect
// in time (prism fails the job after a minute). So with Wait the worker's
// control connection goes through a relay that connects to the runner in
// the worker's name at once and passes the stream on when the worker comes.
func (d *Debug) Wrap(ctx context.Context, l *Launch) (err error) {
	if l.OS != "" && (l.OS != runtime.GOOS || l.Arch != runtime.GOARCH) {
		return fmt.Errorf("Delve cannot debug a %s/%s worker on this %s/%s machine, where it would run under qemu-user: build the worker for %s/%s to debug it",
			l.OS, l.Arch, runtime.GOOS, runtime.GOARCH, runtime.GOOS, runtime.GOARCH)
	}
	addr, release, err := d.Ports.Take()
	if err != nil {
		return err
	}
	argv := l.Argv
	if d.Wait {
		var stop func()
		if argv, stop, err = relayControl(ctx, l); err != nil {
			release()
			return err
		}
		l.Cleanup = append(l.Cleanup, stop)
	}
	l.Cleanup = append(l.Cleanup, release)
	l.Argv = DelveCommand(d.Delve, addr, d.Wait, true, argv)
	if d.AnyUser {
		// After "dlv exec": Delve otherwise refuses local clients of other
		// users, as a port-forward into a container is.
		l.Argv = slices.Insert(l.Argv, 2, "--only-same-user=false")
	}
	if d.OnListen != nil {
		d.OnListen(DebugTarget{ID: l.ID, Address: addr, Wait: d.Wait})
	}
	return nil
}

// relayControl points the worker's control connection at a relay held open
// to the runner, and returns the new command line and how to stop the
// relay.
func relayControl(ctx context.Context, l *Launch) ([]string, func(), error) {
	const flag = "--control_endpoint="
	argv := append([]string(nil), l.Argv...)
	for i, a := range argv {
		if endpoint, ok := strings.CutPrefix(a, flag); ok {
			r, err := startRelay(ctx, l.ID, endpoint)
			if err != nil {
				return nil, nil, err
			}
			argv[i] = flag + r.Address()
			return argv, r.Close, nil
		}
	}
	return nil, nil, errors.New("the worker's command line has no control endpoint to relay")
}

// Ports are the addresses debuggers listen on: a host and a range of ports,
// each used by one program at a time.
type Ports struct {
	host        string
	first, last int

	mu   sync.Mutex
	used map[int]bool
}

// ParsePorts reads HOST:PORT (ports from PORT up) or HOST:FIRST-LAST. A
// host beyond loopback is refused unless expose: whoever reaches a
// debugger can run code as its user. Errors name the address as {DebugAddr}.
func ParsePorts(spec string, expose bool) (*Ports, error) {
	host, ports, err := net.SplitHostPort(spec)
	if err != nil {
		return nil, problem.Usagef("give HOST:PORT or HOST:FIRST-LAST, e.g. 127.0.0.1:2345", "{DebugAddr} %q is not HOST:PORT", spec).About("DebugAddr")
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	first, err1 := strconv.Atoi(lo)
	last, err2 := 65535, error(nil)
	if isRange {
		last, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return nil, problem.Usagef("give a port from 1 to 65535, or a range FIRST-LAST", "{DebugAddr} %q has no usable port", spec).About("DebugAddr")
	}
	if !expose && !netaddr.LoopbackHost(host) {
		return nil, problem.Usagef("give a loopback address such as 127.0.0.1, or set {Expose} to let other machines reach the debugger",
			"{DebugAddr} host %q is not a loopback address: whoever reaches a debugger can run code as this user", host).About("DebugAddr")
	}
	return &Ports{host: host, first: first, last: last, used: map[int]bool{}}, nil
}

// Take reserves the first port of the range that no program of these
// Ports uses and nothing else listens on, so consecutive programs get
// consecutive ports; release gives it back.
func (p *Ports) Take() (addr string, release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port := p.first; port <= p.last; port++ {
		if p.used[port] {
			continue
		}
		a := net.JoinHostPort(p.host, strconv.Itoa(port))
		lis, err := net.Listen("tcp", a)
		if err != nil {
			continue
		}
		lis.Close()
		p.used[port] = true
		var once sync.Once
		return a, func() {
			once.Do(func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				delete(p.used, port)
			})
		}, nil
	}
	return "", nil, problem.Failf("give a wider range with {DebugAddr}, or stop what listens there", "no free port for a debugger in %s:%d-%d", p.host, p.first, p.last)
}

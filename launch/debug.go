package launch

import (
	"sort"
	"sync"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/wrap"
)

// Roles of the programs a launch debugs.
const (
	RoleLauncher = "launcher"
	RoleWorker   = "worker"
)

// DebugTarget is a program of the launch that runs under Delve.
type DebugTarget struct {
	// Role is RoleLauncher or RoleWorker.
	Role string
	// ID is the runner's id for a worker.
	ID string
	// Address is where Delve listens for clients.
	Address string
	// Wait is true when the program waits for a client to continue it.
	Wait bool
	// Module is the pipeline's module path: the binaries are built with
	// -trimpath, so their source files are named by it rather than by the
	// directory they are in.
	Module string
}

// debugger is a launch's use of Delve.
type debugger struct {
	spec  *Debug
	dlv   string
	ports *wrap.Ports
	tell  func(DebugTarget)

	mu     sync.Mutex
	module string
}

func (s *Spec) debugger(obs Observer) (*debugger, error) {
	if s.Debug == nil {
		return nil, nil
	}
	dlv, err := wrap.FindDelve(s.Debug.Dlv)
	if err != nil {
		return nil, err
	}
	ports, err := wrap.ParsePorts(s.Debug.addr(), s.Expose)
	if err != nil {
		return nil, err
	}
	tell := obs.Debugging
	if tell == nil {
		tell = func(DebugTarget) {}
	}
	return &debugger{spec: s.Debug, dlv: dlv, ports: ports, tell: tell}, nil
}

// wrapper runs the workers under Delve.
func (g *debugger) wrapper() wrap.Wrapper {
	return &wrap.Debug{Delve: g.dlv, Ports: g.ports, Wait: g.spec.Wait, OnListen: func(t wrap.DebugTarget) {
		g.tell(DebugTarget{Role: RoleWorker, ID: t.ID, Address: t.Address, Wait: t.Wait, Module: g.moduleName()})
	}}
}

func (g *debugger) setModule(m string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.module = m
}

func (g *debugger) moduleName() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.module
}

// launcher returns how to run the launcher under Delve, and what to call
// once it has ended; nil when the launcher runs as it is.
func (g *debugger) launcher() (func([]string) []string, func(), error) {
	if g == nil || !g.spec.Launcher {
		return nil, func() {}, nil
	}
	addr, release, err := g.ports.Take()
	if err != nil {
		return nil, nil, err
	}
	g.tell(DebugTarget{Role: RoleLauncher, Address: addr, Wait: true, Module: g.moduleName()})
	return func(argv []string) []string {
		// The launcher always waits: without a client's breakpoints it would
		// be through main before anyone could attach.
		return wrap.DelveCommand(g.dlv, addr, true, true, argv)
	}, release, nil
}

// debuggable checks that Delve can debug a worker for p on this machine.
func debuggable(p build.Platform) error {
	host := build.HostPlatform()
	if p.OS == host.OS && p.Arch == host.Arch {
		return nil
	}
	return problem.Usagef("debug the worker built for this machine: {Target} host",
		"Delve cannot debug a %s worker on this %s machine, where qemu-user runs it", p, host)
}

// DoFnTransforms names the pipeline's transforms that run DoFns of their
// own, sorted: the places a breakpoint in a worker can stop.
func DoFnTransforms(p *pipepb.Pipeline) []string {
	var names []string
	for _, t := range p.GetComponents().GetTransforms() {
		if len(t.GetSubtransforms()) == 0 && t.GetSpec().GetUrn() == beam.ParDoURN {
			names = append(names, t.GetUniqueName())
		}
	}
	sort.Strings(names)
	return names
}

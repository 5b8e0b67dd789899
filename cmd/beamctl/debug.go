package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/launch"
)

// addDebugFlags registers how run debugs its programs; --debug itself is a
// build flag, whose meaning run extends.
func addDebugFlags(f *pflag.FlagSet) {
	f.Lookup("debug").Usage = "build for debuggers (no optimisation, symbols kept) and run each worker under Delve, stopped until a debugger continues it"
	f.String("debug-addr", launch.DefaultDebugAddr, "with --debug: where the first debugger listens, HOST:PORT (later workers take the next ports) or HOST:FIRST-LAST; beyond loopback only with --expose")
	f.Bool("debug-wait", true, "with --debug: start each worker stopped until a debugger continues it; false starts it at once")
	f.String("dlv", "", "with --debug: the Delve executable (default: dlv on PATH)")
	f.Bool("debug-launcher", false, "with --debug: also run the launcher under Delve, stopped until a debugger continues it, so breakpoints in main hit")
	declareSettings(f, fields{"debug-addr": {"DebugAddr"}, "debug-wait": nil, "dlv": {"Dlv"}, "debug-launcher": nil})
}

// debugSpec reads the debug settings; nil without --debug.
func (a *app) debugSpec(flags *pflag.FlagSet) (*launch.Debug, error) {
	if !a.v.GetBool("debug") {
		for _, name := range []string{"debug-launcher", "debug-addr", "debug-wait", "dlv"} {
			if a.changed(flags, name) {
				return nil, usagef("--%s needs --debug", name)
			}
		}
		return nil, nil
	}
	return &launch.Debug{
		Dlv:      a.v.GetString("dlv"),
		Addr:     a.v.GetString("debug-addr"),
		Wait:     a.v.GetBool("debug-wait"),
		Launcher: a.v.GetBool("debug-launcher"),
	}, nil
}

// debugEvent is what `run --output json` reports of debugging: a program
// under Delve ("debugger"), or where to break ("transforms").
type debugEvent struct {
	Event   string `json:"event"`
	Role    string `json:"role,omitempty"`
	ID      string `json:"id,omitempty"`
	Address string `json:"address,omitempty"`
	Wait    bool   `json:"wait,omitempty"`
	// Connect is the terminal client's command line.
	Connect string `json:"connect,omitempty"`
	// VSCode is a launch.json configuration that attaches to the program.
	VSCode *vscodeAttach `json:"vscode,omitempty"`
	// Transforms are the pipeline's DoFn transforms.
	Transforms []string `json:"transforms,omitempty"`
}

// vscodeAttach is a VS Code Go launch.json configuration attaching to a
// remote Delve server.
type vscodeAttach struct {
	Name           string       `json:"name"`
	Type           string       `json:"type"`
	Request        string       `json:"request"`
	Mode           string       `json:"mode"`
	Host           string       `json:"host"`
	Port           int          `json:"port"`
	SubstitutePath []substitute `json:"substitutePath,omitempty"`
}

type substitute struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// printDebugTarget tells how to attach to a program under Delve.
func (a *app) printDebugTarget(t launch.DebugTarget) {
	host, portText, _ := net.SplitHostPort(t.Address)
	port, _ := strconv.Atoi(portText)
	e := debugEvent{Event: "debugger", Role: t.Role, ID: t.ID, Address: t.Address, Wait: t.Wait,
		Connect: "dlv connect " + t.Address,
		VSCode:  &vscodeAttach{Name: "beamctl " + t.Role + " " + t.Address, Type: "go", Request: "attach", Mode: "remote", Host: host, Port: port}}
	// The binaries are built with -trimpath: their files are named by
	// module path, which the editor must map to the files it has open.
	if dir := moduleDir(a.pipelineDir); dir != "" && t.Module != "" {
		e.VSCode.SubstitutePath = []substitute{{From: dir, To: t.Module}}
	}
	if a.json {
		_ = a.printJSONLine(e)
		return
	}
	what := t.Role
	if t.ID != "" {
		what += " " + t.ID
	}
	state := "running"
	if t.Wait {
		state = "stopped until a debugger continues it"
	}
	snippet, _ := json.Marshal(e.VSCode)
	fmt.Fprintf(a.stderr, "debug: %s runs under Delve on %s, %s\n", what, t.Address, state)
	fmt.Fprintf(a.stderr, "  terminal: %s   (then e.g. break main.go:42, continue; quit -c leaves it running)\n", e.Connect)
	fmt.Fprintf(a.stderr, "  VS Code:  launch.json configuration %s\n", snippet)
}

// printTransforms lists where a worker's breakpoints can stop.
func (a *app) printTransforms(names []string) {
	if a.json {
		_ = a.printJSONLine(debugEvent{Event: "transforms", Transforms: names})
		return
	}
	fmt.Fprintln(a.stderr, "debug: the pipeline's DoFns run in these transforms (break in their methods, such as ProcessElement):")
	for _, n := range names {
		fmt.Fprintln(a.stderr, "  "+n)
	}
}

// moduleDir is the directory of the go.mod that governs dir, or "".
func moduleDir(dir string) string {
	for dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	return ""
}

package submit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailureCause reads failure messages that prism sent for real jobs,
// each the text of the error message event that `beamctl run --output
// json` printed (testdata/failures; the pipelines are
// vet/testdata/bad/unregistered, submit/testdata/panicky,
// cmd/beamctl/testdata/mistakes with each --mistake, and
// examples/wordcount writing below /proc).
func TestFailureCause(t *testing.T) {
	const mistakes = "github.com/beamctl/beamctl/cmd/beamctl/testdata/mistakes/main.go"
	tests := []struct {
		file string
		want Cause
		// fix holds what the fix must say, in order.
		fix []string
	}{
		{"unregistered", Cause{Kind: CauseUnregistered, Transform: "main.shout", Function: "main.shout",
			Reason: "main.shout not found. Register DoFns and functions with the beam/register package"},
			[]string{"init function", "register.Function1x1(shout)", registerPkg}},
		{"closure", Cause{Kind: CauseFunctionLiteral, Transform: "Upper/main.main.func1", Function: "main.main.func1",
			Reason: "main.main.func1 not found. Register DoFns and functions with the beam/register package"},
			[]string{"function literal", "in main.main", "named top-level function", "register.Function1x1", "DoFn struct"}},
		{"launch-only-dofn", Cause{Kind: CauseUnregistered, Transform: "main.upperFn", Function: "main.upperFn",
			Reason: "external key not found main.upperFn"},
			[]string{"not on workers", "init function", "register.DoFnXxY[…](&upperFn{})", "ProcessElement"}},
		{"launch-only-type", Cause{Kind: CauseUnregistered, Transform: "main.toRecord", Function: "main.toRecord",
			Reason: "external key not found main.record"},
			[]string{"main.record", "not on workers", "init function", "beam.RegisterType(reflect.TypeOf((*record)(nil)).Elem())"}},
		{"panicky", Cause{Kind: CausePanic, Transform: "main.explodeFn", Function: "main.(*explodeFn).ProcessElement",
			At: "github.com/beamctl/beamctl/submit/testdata/panicky/main.go:31", Reason: "panicky: element 2 is not welcome"}, nil},
		// The panic is in a helper the DoFn calls, where the runtime
		// raised it.
		{"helper-panic", Cause{Kind: CausePanic, Transform: "main.pickFn", Function: "main.pick",
			At: mistakes + ":42", Reason: "runtime error: slice bounds out of range [:4] with length 1"}, nil},
		// The panic is in the standard library, called by the DoFn.
		{"library-panic", Cause{Kind: CausePanic, Transform: "main.compile", Function: "main.compile",
			At: mistakes + ":44", Reason: "regexp: Compile(`a(`): error parsing regexp: missing closing ): `a(`"}, nil},
		{"error", Cause{Kind: CauseDoFnError, Transform: "main.reject", Function: "main.reject",
			Reason: "mistakes: a is not a word"}, nil},
		{"unwritable", Cause{Kind: CauseDoFnError, Transform: "textio.writeFileFn",
			Function: "github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio.writeFileFn",
			Reason:   "mkdir /proc/beamctl: no such file or directory"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join("testdata", "failures", tt.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			c := FailureCause(string(msg))
			if c == nil {
				t.Fatal("no cause")
			}
			fix := c.Fix
			c.Fix = ""
			if *c != tt.want {
				t.Errorf("cause\n got %+v\nwant %+v", *c, tt.want)
			}
			rest := fix
			for _, w := range tt.fix {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("fix %q lacks %q (in this order: %q)", fix, w, tt.fix)
					break
				}
				rest = rest[i+len(w):]
			}
			if len(tt.fix) == 0 && fix != "" {
				t.Errorf("fix %q; want none", fix)
			}
			if s := c.Summary(); strings.Contains(s, "\n") || len(s) > 250 {
				t.Errorf("summary is not one short line: %q", s)
			}
		})
	}
}

// TestFailureCauseOther covers messages that are none of the mistakes the
// SDK's words tell apart.
func TestFailureCauseOther(t *testing.T) {
	tests := []struct {
		name, msg string
		want      *Cause
	}{
		{"empty", " \n", nil},
		{"one line", "worker exited\n", &Cause{Kind: CauseOther, Reason: "worker exited"}},
		{"no chain", "job failed\n  at step 3\n", &Cause{Kind: CauseOther, Reason: "job failed"}},
		{"innermost of a chain", "bundle failed: top\n\tcaused by:\n\tcontext of the middle\nmiddle\n\tcaused by:\n\tcontext\n\tof the bottom\nbottom line\nmore of it",
			&Cause{Kind: CauseOther, Reason: "bottom line"}},
		// Without the function's description, the fix cannot count
		// its parameters.
		{"unregistered, no descriptor", "x\n\tcaused by:\ngithub.com/a/b/pkg.fn not found. Register DoFns and functions with the the beam/register package.",
			&Cause{Kind: CauseUnregistered, Function: "github.com/a/b/pkg.fn",
				Reason: "github.com/a/b/pkg.fn not found. Register DoFns and functions with the beam/register package",
				Fix:    "register it in an init function of package github.com/a/b/pkg, which workers run too: register.FunctionXxY(fn), from " + registerPkg + ", X and Y being its numbers of parameters and results"}},
		{"unregistered receiver", "generating model pipeline\n\tcaused by:\n\tencoding structural DoFn &{}\nreceiver type *main.upperFn must be registered",
			&Cause{Kind: CauseUnregistered, Function: "main.upperFn", Reason: "receiver type *main.upperFn must be registered",
				Fix: "register it in an init function: register.DoFnXxY[…](&upperFn{}), X and Y being the numbers of parameters and results of its ProcessElement"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FailureCause(tt.msg)
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("FailureCause(%q)\n got %+v\nwant %+v", tt.msg, got, tt.want)
			}
		})
	}
}

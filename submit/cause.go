package submit

import (
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	v1pb "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx/v1"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
)

// Kinds of failure cause.
const (
	// CauseUnregistered is a function, DoFn or type that workers cannot
	// find because no init function registers it.
	CauseUnregistered = "unregistered"
	// CauseFunctionLiteral is a function literal used as a DoFn: it has
	// no name a worker could find it by.
	CauseFunctionLiteral = "function_literal"
	// CausePanic is a panic in a DoFn.
	CausePanic = "panic"
	// CauseDoFnError is an error a DoFn returned.
	CauseDoFnError = "dofn_error"
	// CauseOther is anything else: the innermost error of the message.
	CauseOther = "other"
)

// Cause is a runner's failure message in a few words: where the job
// failed, the SDK's reason and what to do about it. The message itself
// also carries the execution plan, the bundle descriptor or the stack,
// which say more than it takes to act.
type Cause struct {
	// Kind is one of the Cause kinds.
	Kind string `json:"kind"`
	// Transform is the failing transform: its unique name where the
	// message carries the bundle descriptor, else the ParDo of the
	// worker's execution plan, which is named after its DoFn.
	Transform string `json:"transform,omitempty"`
	// Function is the user's function or DoFn the failure is about; for a
	// panic, the innermost function of the user's code on the stack.
	Function string `json:"function,omitempty"`
	// At is the source line a panic came from, as the stack gives it.
	At string `json:"at,omitempty"`
	// Reason is the SDK's account: its innermost error, or the panic value.
	Reason string `json:"reason"`
	// Fix says what to do; empty when the reason is all there is to say.
	Fix string `json:"fix,omitempty"`
}

// Summary says where and why in one line, without the fix.
func (c *Cause) Summary() string {
	if c.Kind == CausePanic {
		where := "panic"
		if c.Function != "" {
			where += " in " + c.Function
		}
		if c.At != "" {
			where += " at " + c.At
		}
		if c.Transform != "" {
			where += ", transform " + c.Transform
		}
		return where + ": " + c.Reason
	}
	var where []string
	if c.Transform != "" {
		where = append(where, "transform "+c.Transform)
	}
	// The function goes without saying where the transform is named
	// after it or the reason names it.
	if f := c.Function; f != "" && !strings.HasSuffix(c.Transform, shortName(f)) && !strings.Contains(c.Reason, f) {
		where = append(where, "function "+f)
	}
	if len(where) == 0 {
		return c.Reason
	}
	return "in " + strings.Join(where, ", ") + ": " + c.Reason
}

// String is the summary and the fix in one line.
func (c *Cause) String() string {
	if c.Fix == "" {
		return c.Summary()
	}
	return c.Summary() + ": " + c.Fix
}

// The Beam Go SDK's errors nest: each level writes its context lines
// (indented with a tab), its message, then "caused by:" and the error
// beneath.
var causedBy = regexp.MustCompile(`\n\t*caused by:\n`)

var (
	notFoundRE     = regexp.MustCompile(`^(\S+) not found\. Register DoFns and functions with the (?:the )?beam/register package\.?$`)
	externalKeyRE  = regexp.MustCompile(`^external key not found (\S+)$`)
	receiverTypeRE = regexp.MustCompile(`^receiver type \*?(\S+) must be registered$`)
	panicRE        = regexp.MustCompile(`(?s)^panic: (.*?) goroutine \d+ \[[^\]]*\]:\n(.*)$`)
	dofnFailedRE   = regexp.MustCompile(`(?s)^DoFn\[UID:[^,]*, PID:[^,]*, Name: ([^\]]+)\] failed:\n(.*)$`)
	planParDoRE    = regexp.MustCompile(`(?m)^\d+: ParDo\[([^\]]+)\]`)
	// A function literal's symbol is its enclosing function's with
	// .funcN, and .N or .funcN again for each literal nested within.
	literalRE = regexp.MustCompile(`\.func\d+(?:\.\d+|\.func\d+)*$`)
)

// registerPkg is where the registration functions of the fixes live.
const registerPkg = "github.com/apache/beam/sdks/v2/go/pkg/beam/register"

// FailureCause reads a runner's failure message for what went wrong. It
// knows the Beam Go SDK's error chains and what they say of the mistakes
// that show only on workers: functions, DoFns and types that no init
// function registers, function literals, panics in the user's code and
// errors a DoFn returns. Of any other message it gives the innermost error
// of the chain. It returns nil for an empty message.
func FailureCause(msg string) *Cause {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return nil
	}
	chain := causedBy.Split(msg, -1)
	inner := errorText(chain[len(chain)-1])
	first, _, _ := strings.Cut(inner, "\n")
	first = strings.TrimSpace(first)
	if m := panicRE.FindStringSubmatch(inner); m != nil {
		return panicCause(msg, strings.TrimSpace(m[1]), m[2])
	}
	if m := dofnFailedRE.FindStringSubmatch(inner); m != nil {
		reason, _, _ := strings.Cut(strings.TrimSpace(m[2]), "\n")
		return &Cause{Kind: CauseDoFnError, Function: m[1], Transform: planParDo(msg, m[1]), Reason: reason}
	}
	if m := notFoundRE.FindStringSubmatch(first); m != nil {
		return notFoundCause(msg, m[1])
	}
	if m := externalKeyRE.FindStringSubmatch(first); m != nil {
		return externalKeyCause(msg, first, m[1])
	}
	if m := receiverTypeRE.FindStringSubmatch(first); m != nil {
		return &Cause{Kind: CauseUnregistered, Function: m[1], Reason: first,
			Fix: "register it in an init function" + ofPackage(m[1]) + ": " + registerDoFn(m[1])}
	}
	return &Cause{Kind: CauseOther, Reason: first}
}

// errorText is one level of a chain without its context lines.
func errorText(level string) string {
	lines := strings.Split(level, "\n")
	for len(lines) > 1 && strings.HasPrefix(lines[0], "\t") {
		lines = lines[1:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func notFoundCause(msg, name string) *Cause {
	c := &Cause{Kind: CauseUnregistered, Function: name,
		Reason: name + " not found. Register DoFns and functions with the beam/register package"}
	sig := "XxY"
	edge, transform := failingEdge(msg)
	if u := edge.GetFn().GetFn(); u.GetName() == name {
		c.Transform = transform
		sig = fmt.Sprintf("%dx%d", len(u.GetType().GetParameterTypes()), len(u.GetType().GetReturnTypes()))
	}
	if literalRE.MatchString(name) {
		c.Kind = CauseFunctionLiteral
		c.Fix = fmt.Sprintf("a function literal (this one in %s) has no name that workers can find it by: make it a named top-level function registered in an init function (register.Function%s), or a DoFn struct registered with register.DoFnXxY",
			literalRE.ReplaceAllString(name, ""), sig)
		return c
	}
	c.Fix = fmt.Sprintf("register it in an init function%s, which workers run too: register.Function%s(%s), from %s",
		ofPackage(name), sig, goName(name), registerPkg)
	if sig == "XxY" {
		c.Fix += ", X and Y being its numbers of parameters and results"
	}
	return c
}

// externalKeyCause is a type the launcher had registered, so that the
// pipeline names it by key, and the worker has not: its registration ran
// in main, or behind a flag, rather than in an init function.
func externalKeyCause(msg, reason, typ string) *Cause {
	c := &Cause{Kind: CauseUnregistered, Function: typ, Reason: reason}
	register := fmt.Sprintf("beam.RegisterType(reflect.TypeOf((*%s)(nil)).Elem())", goName(typ))
	edge, transform := failingEdge(msg)
	c.Transform = transform
	if fn := edge.GetFn(); fn.GetFn() == nil && externalKey(fn.GetType()) == typ {
		register = registerDoFn(typ)
	} else if name := fn.GetFn().GetName(); name != "" {
		c.Function = name
	}
	c.Fix = fmt.Sprintf("%s was registered where the pipeline was constructed but not on workers: register it in an init function%s, unconditionally: %s",
		typ, ofPackage(typ), register)
	return c
}

func registerDoFn(typ string) string {
	return fmt.Sprintf("register.DoFnXxY[…](&%s{}), X and Y being the numbers of parameters and results of its ProcessElement", goName(typ))
}

// externalKey is the registered name of a type, or of the type a pointer
// points to.
func externalKey(t *v1pb.Type) string {
	if t.GetKind() == v1pb.Type_PTR {
		t = t.GetElement()
	}
	if t.GetKind() == v1pb.Type_EXTERNAL {
		return t.GetExternalKey()
	}
	return ""
}

// failingEdge reads the SDK's description of the DoFn it failed to decode,
// and the unique name of its transform in the bundle descriptor the
// message carries; either may be missing.
func failingEdge(msg string) (*v1pb.MultiEdge, string) {
	text, ok := contextAfter(msg, "decoding userfn ")
	if !ok {
		return nil, ""
	}
	var edge v1pb.MultiEdge
	if unmarshalText(text, &edge) != nil {
		return nil, ""
	}
	text, ok = contextAfter(msg, "invalid bundle desc: ")
	if !ok {
		return &edge, ""
	}
	// The descriptor follows the line that names it.
	_, text, _ = strings.Cut(text, "\n")
	var desc fnpb.ProcessBundleDescriptor
	if unmarshalText(text, &desc) != nil {
		return &edge, ""
	}
	ts := desc.GetTransforms()
	for _, id := range slices.Sorted(maps.Keys(ts)) {
		if e := goEdge(ts[id].GetSpec()); e != nil && proto.Equal(e.GetFn(), edge.GetFn()) {
			return &edge, ts[id].GetUniqueName()
		}
	}
	return &edge, ""
}

// contextAfter finds the context line that begins with prefix and returns
// what follows the prefix, to the end of the message.
func contextAfter(msg, prefix string) (string, bool) {
	i := strings.Index(msg, "\t"+prefix)
	if i < 0 {
		return "", false
	}
	return msg[i+1+len(prefix):], true
}

// unmarshalText reads the message printed on the first line of text.
func unmarshalText(text string, m proto.Message) error {
	line, _, _ := strings.Cut(text, "\n")
	return prototext.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(strings.TrimSpace(line)), m)
}

// goEdge is the Go SDK's description of the function a ParDo or combine
// transform runs, or nil for any other transform.
func goEdge(spec *pipepb.FunctionSpec) *v1pb.MultiEdge {
	var fn *pipepb.FunctionSpec
	switch {
	case spec.GetUrn() == beam.ParDoURN:
		var p pipepb.ParDoPayload
		if proto.Unmarshal(spec.GetPayload(), &p) != nil {
			return nil
		}
		fn = p.GetDoFn()
	case strings.HasPrefix(spec.GetUrn(), beam.CombineURNPrefix):
		var p pipepb.CombinePayload
		if proto.Unmarshal(spec.GetPayload(), &p) != nil {
			return nil
		}
		fn = p.GetCombineFn()
	default:
		return nil
	}
	if fn.GetUrn() != beam.GoDoFnURN {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(fn.GetPayload()))
	var tp v1pb.TransformPayload
	if err != nil || proto.Unmarshal(raw, &tp) != nil {
		return nil
	}
	return tp.GetEdge()
}

// stackFrame is one call of a goroutine's stack.
type stackFrame struct{ fn, at string }

func panicCause(msg, value, stack string) *Cause {
	c := &Cause{Kind: CausePanic, Reason: value}
	frames := stackFrames(stack)
	// The frames above the panic are the SDK recovering it.
	for i, f := range frames {
		if f.fn == "panic" {
			frames = frames[i+1:]
			break
		}
	}
	for _, f := range frames {
		if sdkOrStd(f.fn) {
			continue
		}
		if c.Function == "" {
			c.Function, c.At = f.fn, f.at
		}
		// The panic may come from a helper the DoFn calls: the transform
		// is that of the first caller the plan runs as a DoFn.
		if c.Transform = planParDo(msg, f.fn); c.Transform != "" {
			break
		}
	}
	return c
}

// stackFrames reads a stack as runtime/debug.Stack prints it: a line with
// the call, then a tab and its file:line.
func stackFrames(stack string) []stackFrame {
	lines := strings.Split(stack, "\n")
	var frames []stackFrame
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(lines[i], "\t") || strings.HasPrefix(l, "created by ") || strings.HasPrefix(l, "...") {
			continue
		}
		f := stackFrame{fn: l}
		if strings.HasSuffix(l, ")") {
			if j := strings.LastIndex(l, "("); j > 0 {
				f.fn = l[:j]
			}
		}
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
			i++
			f.at, _, _ = strings.Cut(strings.TrimSpace(lines[i]), " +0x")
		}
		frames = append(frames, f)
	}
	return frames
}

// sdkOrStd reports whether function fn belongs to the Go runtime and
// standard library, or to the Beam SDK.
func sdkOrStd(fn string) bool {
	p := pkgPath(fn)
	if p == "main" {
		return false
	}
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".") || strings.HasPrefix(p, "github.com/apache/beam/sdks/")
}

// planParDo finds the ParDo of the execution plan in msg that runs
// function fn, or a method of its type, as its DoFn.
func planParDo(msg, fn string) string {
	short := shortName(fn)
	candidates := []string{short}
	if pkg, rest, ok := strings.Cut(short, "."); ok {
		typ, _, _ := strings.Cut(strings.TrimPrefix(rest, "(*"), ".")
		candidates = append(candidates, pkg+"."+strings.TrimSuffix(typ, ")"))
	}
	for _, m := range planParDoRE.FindAllStringSubmatch(msg, -1) {
		if slices.Contains(candidates, m[1]) {
			return m[1]
		}
	}
	return ""
}

// pkgPath is the import path of function or type name, "main" for
// "main.shout".
func pkgPath(name string) string {
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return name
	}
	return name[:slash+1+dot]
}

// shortName is name qualified by its package's name rather than its path,
// as the SDK's execution plan writes it: "textio.writeFileFn".
func shortName(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// goName is name as its own package writes it: "shout" for "main.shout".
func goName(name string) string { return strings.TrimPrefix(name, pkgPath(name)+".") }

// ofPackage says which package to register name in, where it is not main.
func ofPackage(name string) string {
	if p := pkgPath(name); p != "main" {
		return " of package " + p
	}
	return ""
}

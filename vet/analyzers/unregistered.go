package analyzers

import (
	"fmt"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// Unregistered finds DoFns, functions and element types the pipeline uses
// but registers nowhere: a worker, whose binary is stripped of the symbol
// table the SDK would otherwise search, cannot resolve them.
var Unregistered = &analysis.Analyzer{
	Name: "unregistered",
	Doc: `report DoFns, functions and types used in the graph but never registered

A worker finds a DoFn, a function and a struct type of a PCollection by
the name the launcher encoded, in the registry that the register package
(register.DoFnXxY, register.FunctionXxY, register.CombinerN) or
beam.RegisterFunction, beam.RegisterType and beam.RegisterDoFn fill in an
init function; a registration elsewhere, in main or behind a flag, may
never run on a worker. Without an entry the job fails on the worker with "not
found. Register DoFns and functions with the beam/register package".`,
	Requires: []*analysis.Analyzer{graphAnalyzer},
	Run:      runUnregistered,
}

func runUnregistered(pass *analysis.Pass) (any, error) {
	g := pass.ResultOf[graphAnalyzer].(*Graph)
	q := types.RelativeTo(pass.Pkg)
	for _, r := range g.Registrations {
		if r.In == "" {
			continue
		}
		what := "it"
		switch {
		case r.Func != nil:
			what = r.Func.Name()
		case r.Type != nil:
			what = r.Type.Name()
		}
		report(pass, r.Call, "move the registration to an init function, which every worker runs before the pipeline starts",
			"%s registers %s in %s, not in an init function: a worker that does not run this code cannot resolve %s", r.API, what, r.In, what)
	}
	seenType := map[*types.TypeName]bool{}
	for _, u := range g.Uses {
		var who string
		switch u.Kind {
		case KindFunc:
			who = "function " + u.Func.Name()
			if !g.RegisteredFuncs[u.Func] {
				report(pass, u.Arg, "register it in an init function: "+registerFunctionCall(u.Func),
					"function %s is used in %s but registered nowhere: workers cannot resolve it", u.Func.Name(), u.API)
				continue
			}
		case KindStruct:
			who = "DoFn " + u.Type.Name()
			if !g.RegisteredTypes[u.Type] {
				report(pass, u.Arg, "register it in an init function: "+registerDoFnCall(pass.Pkg, u.Type, q),
					"DoFn %s is used in %s but registered nowhere: workers cannot resolve it", u.Type.Name(), u.API)
				continue
			}
		default:
			continue
		}
		// The DoFn is registered, but not by the register package, which
		// would have registered the struct types of its signature too.
		for _, t := range structsIn(pass.Pkg, dofnSignatures(pass.Pkg, u.Func, u.Type)...) {
			if g.CoveredTypes[t] || seenType[t] {
				continue
			}
			seenType[t] = true
			report(pass, u.Arg, fmt.Sprintf("register it in an init function: beam.RegisterType(reflect.TypeOf((*%s)(nil)).Elem()), or register %s with the register package, which registers its types", t.Name(), strings.TrimPrefix(strings.TrimPrefix(who, "DoFn "), "function ")),
				"type %s flows through %s in %s but is registered nowhere: workers cannot resolve it", t.Name(), who, u.API)
		}
	}
	return nil, nil
}

// registerFunctionCall is the register call for fn: register.Function2x1(f).
func registerFunctionCall(fn *types.Func) string {
	s := fn.Signature()
	return fmt.Sprintf("register.Function%dx%d(%s)", s.Params().Len(), s.Results().Len(), fn.Name())
}

// registerDoFnCall is the register call for a DoFn or combine fn type,
// with the type arguments its methods need.
func registerDoFnCall(pkg *types.Package, tn *types.TypeName, q types.Qualifier) string {
	ts := func(t types.Type) string { return types.TypeString(t, q) }
	if merge := methodSig(pkg, tn, "MergeAccumulators"); merge != nil && merge.Params().Len() > 0 {
		accum := ts(merge.Params().At(0).Type())
		in, out := "", ""
		if add := methodSig(pkg, tn, "AddInput"); add != nil && add.Params().Len() > 1 {
			in = ts(add.Params().At(add.Params().Len() - 1).Type())
		}
		if ext := methodSig(pkg, tn, "ExtractOutput"); ext != nil && ext.Results().Len() > 0 {
			out = ts(ext.Results().At(0).Type())
		}
		switch {
		case in != "" && out != "":
			return fmt.Sprintf("register.Combiner3[%s, %s, %s](&%s{})", accum, in, out, tn.Name())
		case in != "":
			return fmt.Sprintf("register.Combiner2[%s, %s](&%s{})", accum, in, tn.Name())
		}
		return fmt.Sprintf("register.Combiner1[%s](&%s{})", accum, tn.Name())
	}
	pe := methodSig(pkg, tn, "ProcessElement")
	if pe == nil {
		return fmt.Sprintf("beam.RegisterType(reflect.TypeOf((*%s)(nil)).Elem())", tn.Name())
	}
	var args []string
	for _, tup := range []*types.Tuple{pe.Params(), pe.Results()} {
		for v := range tup.Variables() {
			args = append(args, ts(v.Type()))
		}
	}
	call := fmt.Sprintf("register.DoFn%dx%d", pe.Params().Len(), pe.Results().Len())
	if len(args) > 0 {
		call += "[" + strings.Join(args, ", ") + "]"
	}
	return call + "(&" + tn.Name() + "{})"
}

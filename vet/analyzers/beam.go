// Package analyzers holds beamctl's pipeline checks: go/analysis analyzers
// for the Beam Go mistakes that compile, pass a local run, and then fail or
// silently compute the wrong thing on a runner's workers.
package analyzers

import (
	"go/ast"
	"go/types"
	"reflect"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/inspect"
	"golang.org/x/tools/go/ast/inspector"
	"golang.org/x/tools/go/types/typeutil"
)

// All are the checks beamctl vet runs, in the order their findings are
// explained in the guide.
var All = []*analysis.Analyzer{UnexportedField, FlagRead, Unregistered, AnonymousFn, DoFnMethod}

const (
	beamPkg     = "github.com/apache/beam/sdks/v2/go/pkg/beam"
	registerPkg = beamPkg + "/register"
	filterPkg   = beamPkg + "/transforms/filter"
	topPkg      = beamPkg + "/transforms/top"
	statsPkg    = beamPkg + "/transforms/stats"
)

// dofnArgs maps the SDK's transforms to the index of the argument that is
// serialised by reference to the workers: a DoFn, a combine fn or a
// function.
var dofnArgs = map[string]map[string]int{
	beamPkg: {
		"ParDo": 1, "ParDo0": 1, "ParDo2": 1, "ParDo3": 1, "ParDo4": 1, "ParDo5": 1,
		"ParDo6": 1, "ParDo7": 1, "ParDoN": 1, "TryParDo": 1,
		"Combine": 1, "CombinePerKey": 1, "TryCombine": 1, "TryCombinePerKey": 1,
		"Partition": 2,
	},
	filterPkg: {"Include": 2, "Exclude": 2},
	topPkg:    {"Largest": 3, "Smallest": 3, "LargestPerKey": 3, "SmallestPerKey": 3},
	statsPkg:  {"ApproximateQuantiles": 2, "ApproximateWeightedQuantiles": 2},
}

// Kind is what an expression passed as a DoFn turns out to be.
type Kind int

const (
	// KindFunc is a top-level function of the package being checked.
	KindFunc Kind = iota + 1
	// KindStruct is a value or pointer of a struct type of that package.
	KindStruct
	// KindLiteral is a function literal, or a variable holding one.
	KindLiteral
	// KindBuilt is a function made at run time: a call's result or a
	// method value, which has no name a worker could look up.
	KindBuilt
	// KindOther is anything else: a function or type of another package,
	// or an expression whose origin is not known statically.
	KindOther
)

// Use is one place where the pipeline hands a DoFn to the SDK.
type Use struct {
	Call *ast.CallExpr
	Arg  ast.Expr
	// API names the transform, e.g. "beam.ParDo".
	API  string
	Kind Kind
	Func *types.Func
	Type *types.TypeName
	// Pointer reports whether a KindStruct DoFn is passed as a pointer.
	Pointer bool
}

// Registration is one call that registers a function or type with the
// SDK.
type Registration struct {
	Call *ast.CallExpr
	// API names the call, e.g. "register.DoFn2x1" or "beam.RegisterType".
	API  string
	Func *types.Func
	Type *types.TypeName
	// In names the function the call is in, "" for a package
	// variable's initialiser, init, or a function only init calls: where
	// registrations belong.
	In string
}

// Graph is what the package hands to the SDK: DoFn uses and
// registrations, of objects declared in the package.
type Graph struct {
	Uses          []Use
	Registrations []Registration
	// RegisteredFuncs and RegisteredTypes hold what some registration
	// names; CoveredTypes also the struct types a register.* call
	// registers along with a DoFn's or function's signature.
	RegisteredFuncs map[*types.Func]bool
	RegisteredTypes map[*types.TypeName]bool
	CoveredTypes    map[*types.TypeName]bool
	// Decls are the package's function declarations with bodies.
	Decls map[*types.Func]*ast.FuncDecl
}

// DoFnTypes are the package's struct types that are DoFns: used as one or
// registered.
func (g *Graph) DoFnTypes() map[*types.TypeName]bool {
	out := map[*types.TypeName]bool{}
	for _, u := range g.Uses {
		if u.Kind == KindStruct {
			out[u.Type] = true
		}
	}
	for _, r := range g.Registrations {
		if r.Type != nil {
			out[r.Type] = true
		}
	}
	return out
}

// DoFnFuncs are the package's functions that are DoFns: used as one or
// registered.
func (g *Graph) DoFnFuncs() map[*types.Func]bool {
	out := map[*types.Func]bool{}
	for _, u := range g.Uses {
		if u.Kind == KindFunc {
			out[u.Func] = true
		}
	}
	for f := range g.RegisteredFuncs {
		out[f] = true
	}
	return out
}

// graphAnalyzer finds the package's DoFn uses and registrations once for
// every check.
var graphAnalyzer = &analysis.Analyzer{
	Name:       "beamgraph",
	Doc:        "finds the DoFns a package hands to the Beam SDK and what it registers",
	Requires:   []*analysis.Analyzer{inspect.Analyzer},
	ResultType: reflect.TypeFor[*Graph](),
	Run:        findGraph,
}

func findGraph(pass *analysis.Pass) (any, error) {
	g := &Graph{
		RegisteredFuncs: map[*types.Func]bool{},
		RegisteredTypes: map[*types.TypeName]bool{},
		CoveredTypes:    map[*types.TypeName]bool{},
	}
	ins := pass.ResultOf[inspect.Analyzer].(*inspector.Inspector)
	g.Decls = funcDecls(pass)
	ix := &pkgIndex{funcLits: literalVars(pass, ins), decls: g.Decls, inInit: initOnly(pass, g.Decls)}
	ins.WithStack([]ast.Node{(*ast.CallExpr)(nil)}, func(n ast.Node, push bool, stack []ast.Node) bool {
		if push {
			visitCall(pass, g, n.(*ast.CallExpr), stack, ix)
		}
		return true
	})
	return g, nil
}

// visitCall records call if it hands a DoFn to the SDK or registers one.
// pkgIndex is what the graph's discovery looks up of the package.
type pkgIndex struct {
	// funcLits are the local variables only ever given function literals.
	funcLits map[*types.Var]bool
	decls    map[*types.Func]*ast.FuncDecl
	// inInit are the functions that run only as part of initialisation.
	inInit map[*ast.FuncDecl]bool
}

// funcDecls indexes the package's function and method declarations that
// have bodies, init functions included.
func funcDecls(pass *analysis.Pass) map[*types.Func]*ast.FuncDecl {
	decls := map[*types.Func]*ast.FuncDecl{}
	for _, f := range pass.Files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				if fn, ok := pass.TypesInfo.Defs[fd.Name].(*types.Func); ok {
					decls[fn] = fd
				}
			}
		}
	}
	return decls
}

func visitCall(pass *analysis.Pass, g *Graph, call *ast.CallExpr, stack []ast.Node, ix *pkgIndex) {
	fn, ok := typeutil.Callee(pass.TypesInfo, call).(*types.Func)
	if !ok || fn.Pkg() == nil {
		return
	}
	path, name := fn.Pkg().Path(), fn.Name()
	if i, ok := dofnArgs[path][name]; ok && i < len(call.Args) {
		u := Use{Call: call, Arg: call.Args[i], API: shortPkg(path) + "." + name}
		u.Kind, u.Func, u.Type, u.Pointer = classify(pass, call.Args[i], ix)
		g.Uses = append(g.Uses, u)
		return
	}
	fd := enclosingFunc(stack)
	api, known := registration(path, name)
	if !known {
		if (fd == nil || ix.inInit[fd]) && fn.Pkg() != pass.Pkg && !strings.HasPrefix(path, beamPkg) {
			// A call of another package's function, made where
			// registrations are, that is given a DoFn or function
			// may be a registration helper of the user's own: what it
			// is given counts as registered, types and all.
			for _, arg := range call.Args {
				if f, t := registeredArg(pass, arg, ix); f != nil || t != nil {
					g.register(pass.Pkg, Registration{Call: call, API: shortPkg(path) + "." + name, Func: f, Type: t}, true)
				}
			}
		}
		return
	}
	if len(call.Args) == 0 {
		return
	}
	r := Registration{Call: call, API: api}
	if fd != nil && !ix.inInit[fd] {
		r.In = fd.Name.Name
	}
	r.Func, r.Type = registeredArg(pass, call.Args[0], ix)
	g.register(pass.Pkg, r, strings.HasPrefix(api, "register."))
	g.Registrations = append(g.Registrations, r)
}

// registeredArg is the function or struct type of the package that a
// registration's argument names, if any.
func registeredArg(pass *analysis.Pass, arg ast.Expr, ix *pkgIndex) (*types.Func, *types.TypeName) {
	if t := reflectedType(pass, arg); t != nil {
		return nil, t
	}
	switch kind, f, t, _ := classify(pass, arg, ix); kind {
	case KindFunc:
		return f, nil
	case KindStruct:
		return nil, t
	}
	return nil, nil
}

// register notes what r registers and, withTypes, the struct types of
// its signatures, which the register package registers along with it.
func (g *Graph) register(pkg *types.Package, r Registration, withTypes bool) {
	if r.Func != nil {
		g.RegisteredFuncs[r.Func] = true
	}
	if r.Type != nil {
		g.RegisteredTypes[r.Type] = true
		g.CoveredTypes[r.Type] = true
	}
	if withTypes {
		for _, t := range structsIn(pkg, dofnSignatures(pkg, r.Func, r.Type)...) {
			g.CoveredTypes[t] = true
		}
	}
}

// enclosingFunc is the function declaration around the innermost node of
// stack, nil at package level.
func enclosingFunc(stack []ast.Node) *ast.FuncDecl {
	for i := len(stack) - 1; i >= 0; i-- {
		if fd, ok := stack[i].(*ast.FuncDecl); ok {
			return fd
		}
	}
	return nil
}

// initOnly finds the package's functions that run only as part of its
// initialisation: init functions, and those that only they (or other such
// functions) call, such as a registerAll called from init.
func initOnly(pass *analysis.Pass, all map[*types.Func]*ast.FuncDecl) map[*ast.FuncDecl]bool {
	decls := map[*types.Func]*ast.FuncDecl{}
	callers := map[*ast.FuncDecl][]*ast.FuncDecl{}
	var inits []*ast.FuncDecl
	for fn, fd := range all {
		if fd.Recv == nil && fd.Name.Name == "init" {
			inits = append(inits, fd)
		} else {
			decls[fn] = fd
		}
	}
	// Any reference to a function other than a call (a method value, a
	// function passed along) may run it from anywhere.
	escapes := map[*ast.FuncDecl]bool{}
	for _, f := range pass.Files {
		for _, d := range f.Decls {
			caller, _ := d.(*ast.FuncDecl)
			called := map[*ast.Ident]bool{}
			ast.Inspect(d, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					fn, ok := typeutil.Callee(pass.TypesInfo, n).(*types.Func)
					if !ok {
						return true
					}
					fd := decls[fn.Origin()]
					if fd == nil {
						return true
					}
					switch fun := ast.Unparen(n.Fun).(type) {
					case *ast.Ident:
						called[fun] = true
					case *ast.SelectorExpr:
						called[fun.Sel] = true
					}
					if caller == nil {
						escapes[fd] = true
					} else {
						callers[fd] = append(callers[fd], caller)
					}
				case *ast.Ident:
					// Named other than as the function of a call: a
					// function value that may run from anywhere.
					if fn, ok := pass.TypesInfo.Uses[n].(*types.Func); ok && !called[n] {
						if fd := decls[fn.Origin()]; fd != nil {
							escapes[fd] = true
						}
					}
				}
				return true
			})
		}
	}
	out := map[*ast.FuncDecl]bool{}
	for _, fd := range inits {
		out[fd] = true
	}
	for changed := true; changed; {
		changed = false
		for _, fd := range decls {
			if out[fd] || escapes[fd] || len(callers[fd]) == 0 {
				continue
			}
			all := true
			for _, c := range callers[fd] {
				all = all && out[c]
			}
			if all {
				out[fd], changed = true, true
			}
		}
	}
	return out
}

func shortPkg(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// registration names the SDK call that registers a function or type.
func registration(path, name string) (string, bool) {
	switch path {
	case registerPkg:
		for _, p := range []string{"DoFn", "Function", "Combiner"} {
			if strings.HasPrefix(name, p) {
				return "register." + name, true
			}
		}
	case beamPkg:
		switch name {
		case "RegisterFunction", "RegisterType", "RegisterDoFn":
			return "beam." + name, true
		}
	}
	return "", false
}

// literalVars finds the local variables that are only ever given function
// literals, so that a DoFn passed through one is known to be a closure.
func literalVars(pass *analysis.Pass, ins *inspector.Inspector) map[*types.Var]bool {
	lit := map[*types.Var]bool{}
	other := map[*types.Var]bool{}
	note := func(id *ast.Ident, rhs ast.Expr) {
		v, ok := pass.TypesInfo.ObjectOf(id).(*types.Var)
		if !ok || v.Parent() == pass.Pkg.Scope() {
			return
		}
		if _, ok := ast.Unparen(rhs).(*ast.FuncLit); ok {
			lit[v] = true
		} else {
			other[v] = true
		}
	}
	ins.Preorder([]ast.Node{(*ast.AssignStmt)(nil), (*ast.ValueSpec)(nil)}, func(n ast.Node) {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) != len(n.Rhs) {
				return
			}
			for i, l := range n.Lhs {
				if id, ok := l.(*ast.Ident); ok {
					note(id, n.Rhs[i])
				}
			}
		case *ast.ValueSpec:
			if len(n.Names) != len(n.Values) {
				return
			}
			for i, id := range n.Names {
				note(id, n.Values[i])
			}
		}
	})
	for v := range other {
		delete(lit, v)
	}
	return lit
}

// classify says what a DoFn argument is.
func classify(pass *analysis.Pass, e ast.Expr, ix *pkgIndex) (Kind, *types.Func, *types.TypeName, bool) {
	e = ast.Unparen(e)
	switch x := e.(type) {
	case *ast.FuncLit:
		return KindLiteral, nil, nil, false
	case *ast.IndexExpr, *ast.IndexListExpr:
		// An instantiated generic function has a name the SDK can
		// register; whether it is registered is beyond these checks.
		if _, ok := pass.TypesInfo.TypeOf(e).Underlying().(*types.Signature); ok {
			return KindOther, nil, nil, false
		}
	case *ast.Ident, *ast.SelectorExpr:
		if sel, ok := x.(*ast.SelectorExpr); ok {
			if s, ok := pass.TypesInfo.Selections[sel]; ok && s.Kind() == types.MethodVal {
				return KindBuilt, nil, nil, false
			}
		}
		var id *ast.Ident
		if sel, ok := x.(*ast.SelectorExpr); ok {
			id = sel.Sel
		} else {
			id = x.(*ast.Ident)
		}
		switch obj := pass.TypesInfo.ObjectOf(id).(type) {
		case *types.Func:
			if obj.Pkg() == pass.Pkg {
				return KindFunc, obj, nil, false
			}
			return KindOther, nil, nil, false
		case *types.Var:
			if ix.funcLits[obj] {
				return KindLiteral, nil, nil, false
			}
		}
	case *ast.CallExpr:
		if _, ok := pass.TypesInfo.TypeOf(e).Underlying().(*types.Signature); ok {
			if tv, ok := pass.TypesInfo.Types[x.Fun]; !ok || !tv.IsType() {
				if returnsClosures(pass, x, ix.decls) {
					return KindBuilt, nil, nil, false
				}
				return KindOther, nil, nil, false
			}
		}
	}
	if t, ptr := localStruct(pass, pass.TypesInfo.TypeOf(e)); t != nil {
		return KindStruct, nil, t, ptr
	}
	return KindOther, nil, nil, false
}

// returnsClosures reports whether call is to a function of the package
// every return of which is a function literal: a factory of closures, as
// opposed to one that picks among named functions.
func returnsClosures(pass *analysis.Pass, call *ast.CallExpr, decls map[*types.Func]*ast.FuncDecl) bool {
	fn, ok := typeutil.Callee(pass.TypesInfo, call).(*types.Func)
	if !ok || fn.Pkg() != pass.Pkg {
		return false
	}
	decl := decls[fn.Origin()]
	if decl == nil || decl.Body == nil {
		return false
	}
	returns, closures := 0, 0
	ast.Inspect(decl.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false // its returns are its own
		case *ast.ReturnStmt:
			returns++
			if len(n.Results) == 1 {
				if _, ok := ast.Unparen(n.Results[0]).(*ast.FuncLit); ok {
					closures++
				}
			}
		}
		return true
	})
	return returns > 0 && closures == returns
}

// localStruct returns the struct type of the package that t is, or points
// to.
func localStruct(pass *analysis.Pass, t types.Type) (*types.TypeName, bool) {
	if t == nil {
		return nil, false
	}
	ptr := false
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t, ptr = p.Elem(), true
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() != pass.Pkg {
		return nil, false
	}
	if _, ok := n.Underlying().(*types.Struct); !ok {
		return nil, false
	}
	return n.Obj(), ptr
}

// reflectedType recognises reflect.TypeOf(x) and reflect.TypeOf(x).Elem(),
// the way beam.RegisterType is given a type.
func reflectedType(pass *analysis.Pass, e ast.Expr) *types.TypeName {
	e = ast.Unparen(e)
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return nil
	}
	fn, _ := typeutil.Callee(pass.TypesInfo, call).(*types.Func)
	if fn == nil {
		return nil
	}
	if fn.Name() == "Elem" {
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
			return reflectedType(pass, sel.X)
		}
		return nil
	}
	if fn.Pkg() != nil && fn.Pkg().Path() == "reflect" && fn.Name() == "TypeFor" {
		// reflect.TypeFor[T](): the type argument names the type.
		var id *ast.Ident
		switch f := ast.Unparen(call.Fun).(type) {
		case *ast.IndexExpr:
			if sel, ok := f.X.(*ast.SelectorExpr); ok {
				id = sel.Sel
			}
		}
		if id == nil {
			return nil
		}
		if inst, ok := pass.TypesInfo.Instances[id]; ok && inst.TypeArgs.Len() == 1 {
			t, _ := localStruct(pass, inst.TypeArgs.At(0))
			return t
		}
		return nil
	}
	if fn.Pkg() == nil || fn.Pkg().Path() != "reflect" || fn.Name() != "TypeOf" || len(call.Args) != 1 {
		return nil
	}
	t, _ := localStruct(pass, pass.TypesInfo.TypeOf(call.Args[0]))
	return t
}

// dofnSignatures are the signatures the SDK calls of a function DoFn fn,
// or of the methods of a struct DoFn or combine fn tn.
func dofnSignatures(pkg *types.Package, fn *types.Func, tn *types.TypeName) []*types.Signature {
	var sigs []*types.Signature
	if fn != nil {
		sigs = append(sigs, fn.Signature())
	}
	if tn != nil {
		for _, name := range []string{"ProcessElement", "MergeAccumulators", "AddInput", "ExtractOutput"} {
			if s := methodSig(pkg, tn, name); s != nil {
				sigs = append(sigs, s)
			}
		}
	}
	return sigs
}

// methodSig is the signature of tn's method name (with a pointer receiver
// or not), or nil.
func methodSig(pkg *types.Package, tn *types.TypeName, name string) *types.Signature {
	sel := types.NewMethodSet(types.NewPointer(tn.Type())).Lookup(pkg, name)
	if sel == nil {
		return nil
	}
	return sel.Obj().(*types.Func).Signature()
}

// structsIn are the package's struct types in sigs, as the register
// package registers them (pointers skipped, top level only).
func structsIn(pkg *types.Package, sigs ...*types.Signature) []*types.TypeName {
	var out []*types.TypeName
	for _, s := range sigs {
		for _, tup := range []*types.Tuple{s.Params(), s.Results()} {
			for v := range tup.Variables() {
				t := v.Type()
				if p, ok := t.(*types.Pointer); ok {
					t = p.Elem()
				}
				if n, ok := types.Unalias(t).(*types.Named); ok && n.Obj().Pkg() == pkg {
					if _, ok := n.Underlying().(*types.Struct); ok {
						out = append(out, n.Obj())
					}
				}
			}
		}
	}
	return out
}

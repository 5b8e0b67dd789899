package analyzers

import (
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/inspect"
	"golang.org/x/tools/go/ast/inspector"
	"golang.org/x/tools/go/types/typeutil"
)

// FlagRead finds DoFns that read a variable only the launcher's flag
// parsing sets: on a worker it holds its default.
var FlagRead = &analysis.Analyzer{
	Name: "flagread",
	Doc: `report DoFns that read flag variables

A worker is started with the runner's flags, not the launcher's: a package
variable that flag parsing sets (flag.String's result, a flag.StringVar
target, pflag's likewise, or a variable main assigns after beam.Init,
which a worker never returns from, or derives from a flag after
flag.Parse) holds its default there. A DoFn method, a function used as a
DoFn, or anything they call in the package that reads one computes with
that default. Carry the value in an exported field of the DoFn instead.`,
	Requires: []*analysis.Analyzer{inspect.Analyzer, graphAnalyzer},
	Run:      runFlagRead,
}

var flagPkgs = []string{"flag", "github.com/spf13/pflag"}

func runFlagRead(pass *analysis.Pass) (any, error) {
	g := pass.ResultOf[graphAnalyzer].(*Graph)
	ins := pass.ResultOf[inspect.Analyzer].(*inspector.Inspector)
	flagVars := findFlagVars(pass, ins)
	if len(flagVars) == 0 {
		return nil, nil
	}

	decls := g.Decls

	// Roots: what runs on a worker.
	type root struct {
		fn   *types.Func
		name string
	}
	var roots []root
	for fn := range g.DoFnFuncs() {
		roots = append(roots, root{fn, "function " + fn.Name()})
	}
	for tn := range g.DoFnTypes() {
		ms := types.NewMethodSet(types.NewPointer(tn.Type()))
		for sel := range ms.Methods() {
			if fn, ok := sel.Obj().(*types.Func); ok && fn.Pkg() == pass.Pkg {
				roots = append(roots, root{fn, "DoFn " + tn.Name() + "." + fn.Name()})
			}
		}
	}
	slices.SortFunc(roots, func(a, b root) int { return int(a.fn.Pos() - b.fn.Pos()) })

	reported := map[token.Pos]bool{}
	for _, r := range roots {
		// Breadth first, so that each read is reported through the
		// shortest chain of calls from the DoFn.
		via := map[*types.Func]*types.Func{r.fn: nil}
		queue := []*types.Func{r.fn}
		for len(queue) > 0 {
			fn := queue[0]
			queue = queue[1:]
			fd := decls[fn]
			if fd == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.Ident:
					v, ok := pass.TypesInfo.Uses[n].(*types.Var)
					if !ok || !flagVars[v] || reported[n.Pos()] {
						return true
					}
					reported[n.Pos()] = true
					who := r.name
					if fn != r.fn {
						who += " (through " + chain(via, fn) + ")"
					}
					report(pass, n, "carry the value in an exported field of the DoFn, set where the pipeline is constructed",
						"%s reads %s, which flag parsing sets only in the launcher: workers see its default", who, v.Name())
				case *ast.CallExpr:
					if callee, ok := typeutil.Callee(pass.TypesInfo, n).(*types.Func); ok && callee.Pkg() == pass.Pkg {
						callee = callee.Origin()
						if _, seen := via[callee]; !seen {
							via[callee] = fn
							queue = append(queue, callee)
						}
					}
				}
				return true
			})
		}
	}
	return nil, nil
}

// chain names the calls from a root to fn: "helper, format".
func chain(via map[*types.Func]*types.Func, fn *types.Func) string {
	var names []string
	for f := fn; via[f] != nil; f = via[f] {
		names = append(names, f.Name())
	}
	slices.Reverse(names)
	return strings.Join(names, ", ")
}

// findFlagVars finds the package variables that flag parsing sets.
func findFlagVars(pass *analysis.Pass, ins *inspector.Inspector) map[*types.Var]bool {
	vars := map[*types.Var]bool{}
	pkgVar := func(e ast.Expr) *types.Var {
		id, ok := ast.Unparen(e).(*ast.Ident)
		if !ok {
			return nil
		}
		v, ok := pass.TypesInfo.ObjectOf(id).(*types.Var)
		if !ok || v.Parent() != pass.Pkg.Scope() {
			return nil
		}
		return v
	}
	isFlagCall := func(call *ast.CallExpr) (*types.Func, bool) {
		fn, ok := typeutil.Callee(pass.TypesInfo, call).(*types.Func)
		if !ok || fn.Pkg() == nil || !slices.Contains(flagPkgs, fn.Pkg().Path()) {
			return nil, false
		}
		return fn, true
	}
	// var x = flag.String(…); flag.StringVar(&x, …).
	ins.Preorder([]ast.Node{(*ast.ValueSpec)(nil), (*ast.CallExpr)(nil)}, func(n ast.Node) {
		switch n := n.(type) {
		case *ast.ValueSpec:
			for i, val := range n.Values {
				call, ok := ast.Unparen(val).(*ast.CallExpr)
				if !ok || i >= len(n.Names) {
					continue
				}
				if fn, ok := isFlagCall(call); ok && isPointerResult(fn) {
					if v := pkgVar(n.Names[i]); v != nil {
						vars[v] = true
					}
				}
			}
		case *ast.CallExpr:
			fn, ok := isFlagCall(n)
			if !ok || len(n.Args) == 0 || !isVarFunc(fn) {
				return
			}
			if u, ok := ast.Unparen(n.Args[0]).(*ast.UnaryExpr); ok && u.Op == token.AND {
				if v := pkgVar(u.X); v != nil {
					vars[v] = true
				}
			}
		}
	})
	// Variables that main or init assigns after flag.Parse. A worker runs
	// main too, up to beam.Init, which never returns there: what main
	// assigns before it is assigned on workers as well, wrongly only when
	// derived from a flag; what it assigns after beam.Init, never.
	fromFlags := func(e ast.Expr) bool {
		found := false
		ast.Inspect(e, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				if v, ok := pass.TypesInfo.Uses[id].(*types.Var); ok && vars[v] {
					found = true
				}
			}
			return !found
		})
		return found
	}
	calls := func(st ast.Stmt, pkgs []string, name string) bool {
		found := false
		ast.Inspect(st, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if fn, ok := typeutil.Callee(pass.TypesInfo, call).(*types.Func); ok && fn.Pkg() != nil &&
					slices.Contains(pkgs, fn.Pkg().Path()) && fn.Name() == name {
					found = true
				}
			}
			return !found
		})
		return found
	}
	for _, f := range pass.Files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Body == nil || (fd.Name.Name != "main" && fd.Name.Name != "init") {
				continue
			}
			parsed, initialised := false, false
			for _, st := range fd.Body.List {
				if !parsed {
					parsed = calls(st, flagPkgs, "Parse")
					continue
				}
				if !initialised && fd.Name.Name == "main" && calls(st, []string{beamPkg}, "Init") {
					initialised = true
					continue
				}
				ast.Inspect(st, func(n ast.Node) bool {
					as, ok := n.(*ast.AssignStmt)
					if !ok || as.Tok == token.DEFINE {
						return true
					}
					for i, l := range as.Lhs {
						v := pkgVar(l)
						if v == nil {
							continue
						}
						rhs := as.Rhs[0]
						if len(as.Rhs) == len(as.Lhs) {
							rhs = as.Rhs[i]
						}
						if initialised || fromFlags(rhs) {
							vars[v] = true
						}
					}
					return true
				})
			}
		}
	}
	return vars
}

// isPointerResult reports whether fn, of a flag package, returns a pointer
// to the flag's value: flag.String, pflag.IntP and the like.
func isPointerResult(fn *types.Func) bool {
	res := fn.Signature().Results()
	if res.Len() != 1 {
		return false
	}
	_, ok := res.At(0).Type().(*types.Pointer)
	return ok
}

// isVarFunc reports whether fn binds a flag to a variable given by
// pointer: flag.StringVar, flag.Var, pflag.IntVarP and the like.
func isVarFunc(fn *types.Func) bool {
	params := fn.Signature().Params()
	if params.Len() == 0 {
		return false
	}
	switch name := fn.Name(); {
	case name == "Var" || name == "VarP" || name == "TextVar":
		return true
	case strings.HasSuffix(name, "Var") || strings.HasSuffix(name, "VarP"):
		_, ok := params.At(0).Type().(*types.Pointer)
		return ok
	}
	return false
}

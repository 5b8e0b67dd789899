package analyzers

import (
	"go/ast"
	"go/types"
	"reflect"
	"strings"
	"unicode"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/inspect"
	"golang.org/x/tools/go/ast/inspector"
)

// UnexportedField finds values given at construction to DoFn fields that
// the SDK does not encode: workers see those fields' zero values.
var UnexportedField = &analysis.Analyzer{
	Name: "unexportedfield",
	Doc: `report DoFn fields set at construction that never reach a worker

The SDK sends a DoFn to the workers JSON-encoded: only exported fields
without a json:"-" tag travel. A value given to any other field where the
pipeline is constructed is lost, and every worker sees the field's zero
value. Fields set in Setup or StartBundle, or never set, are fine.`,
	Requires: []*analysis.Analyzer{inspect.Analyzer, graphAnalyzer},
	Run:      runUnexportedField,
}

func runUnexportedField(pass *analysis.Pass) (any, error) {
	g := pass.ResultOf[graphAnalyzer].(*Graph)
	dofns := g.DoFnTypes()
	for tn := range dofns {
		// A DoFn that encodes itself decides what travels.
		if types.NewMethodSet(types.NewPointer(tn.Type())).Lookup(pass.Pkg, "MarshalJSON") != nil {
			delete(dofns, tn)
		}
	}
	if len(dofns) == 0 {
		return nil, nil
	}
	ins := pass.ResultOf[inspect.Analyzer].(*inspector.Inspector)
	fix := func(tn *types.TypeName, f *types.Var) string {
		if !f.Exported() {
			return "export the field (" + exportedName(f.Name()) + ") so that it is encoded with the DoFn, or set it in Setup on the worker"
		}
		return "remove the json:\"-\" tag so that the field is encoded with the DoFn, or set it in Setup on the worker"
	}
	ins.WithStack([]ast.Node{(*ast.CompositeLit)(nil), (*ast.AssignStmt)(nil), (*ast.IncDecStmt)(nil)}, func(n ast.Node, push bool, stack []ast.Node) bool {
		if !push {
			return true
		}
		switch n := n.(type) {
		case *ast.CompositeLit:
			tn, _ := localStruct(pass, pass.TypesInfo.TypeOf(n))
			if tn == nil || !dofns[tn] || methodOf(pass, stack, tn) {
				return true
			}
			st := tn.Type().Underlying().(*types.Struct)
			for i, elt := range n.Elts {
				var f *types.Var
				var at ast.Node = elt
				if kv, ok := elt.(*ast.KeyValueExpr); ok {
					if id, ok := kv.Key.(*ast.Ident); ok {
						f, _ = pass.TypesInfo.ObjectOf(id).(*types.Var)
						at = kv.Key
					}
				} else if i < st.NumFields() {
					f = st.Field(i)
				}
				if f != nil && lost(st, f) {
					report(pass, at, fix(tn, f), "DoFn %s: field %s is set here but not encoded (%s), so workers see its zero value", tn.Name(), f.Name(), whyLost(f))
				}
			}
		case *ast.AssignStmt:
			for _, l := range n.Lhs {
				checkFieldWrite(pass, l, dofns, stack, fix)
			}
		case *ast.IncDecStmt:
			checkFieldWrite(pass, n.X, dofns, stack, fix)
		}
		return true
	})
	return nil, nil
}

// checkFieldWrite reports x.f = … on a DoFn outside the DoFn's own
// methods, which run on the worker.
func checkFieldWrite(pass *analysis.Pass, lhs ast.Expr, dofns map[*types.TypeName]bool, stack []ast.Node, fix func(*types.TypeName, *types.Var) string) {
	sel, ok := ast.Unparen(lhs).(*ast.SelectorExpr)
	if !ok {
		return
	}
	s, ok := pass.TypesInfo.Selections[sel]
	if !ok || s.Kind() != types.FieldVal || len(s.Index()) != 1 {
		return
	}
	tn, _ := localStruct(pass, s.Recv())
	if tn == nil || !dofns[tn] || methodOf(pass, stack, tn) {
		return
	}
	f := s.Obj().(*types.Var)
	st := tn.Type().Underlying().(*types.Struct)
	if lost(st, f) {
		report(pass, sel.Sel, fix(tn, f), "DoFn %s: field %s is set here but not encoded (%s), so workers see its zero value", tn.Name(), f.Name(), whyLost(f))
	}
}

// methodOf reports whether the innermost function declaration around the
// node is a method of tn: code that runs on the worker.
func methodOf(pass *analysis.Pass, stack []ast.Node, tn *types.TypeName) bool {
	for i := len(stack) - 1; i >= 0; i-- {
		fd, ok := stack[i].(*ast.FuncDecl)
		if !ok {
			continue
		}
		if fd.Recv == nil || len(fd.Recv.List) == 0 {
			return false
		}
		rt, _ := localStruct(pass, pass.TypesInfo.TypeOf(fd.Recv.List[0].Type))
		return rt == tn
	}
	return false
}

// lost reports whether the SDK's JSON encoding of a DoFn drops field f.
func lost(st *types.Struct, f *types.Var) bool {
	if f.Embedded() {
		return false
	}
	for i := range st.NumFields() {
		if st.Field(i) == f {
			if !f.Exported() {
				return true
			}
			name, _, _ := strings.Cut(reflect.StructTag(st.Tag(i)).Get("json"), ",")
			return name == "-"
		}
	}
	return false
}

func whyLost(f *types.Var) string {
	if !f.Exported() {
		return "it is unexported"
	}
	return `its json tag is "-"`
}

func exportedName(s string) string {
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

package analyzers

import (
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// DoFnMethod finds DoFn structs whose method set lacks the method their
// transform calls, most often because the value was passed where the
// methods have pointer receivers.
var DoFnMethod = &analysis.Analyzer{
	Name: "dofnmethod",
	Doc: `report DoFn structs without the method their transform needs

beam.ParDo needs a ProcessElement method and beam.Combine a
MergeAccumulators method, in the method set of the value passed: a DoFn
passed as T{} whose methods have pointer receivers has none, and the SDK
rejects it when the pipeline is constructed.`,
	Requires: []*analysis.Analyzer{graphAnalyzer},
	Run:      runDoFnMethod,
}

func runDoFnMethod(pass *analysis.Pass) (any, error) {
	g := pass.ResultOf[graphAnalyzer].(*Graph)
	for _, u := range g.Uses {
		if u.Kind != KindStruct {
			continue
		}
		need := "ProcessElement"
		if strings.Contains(u.API, "Combine") {
			need = "MergeAccumulators"
		} else if !strings.Contains(u.API, "ParDo") {
			continue
		}
		var passed types.Type = u.Type.Type()
		if u.Pointer {
			passed = types.NewPointer(passed)
		}
		if types.NewMethodSet(passed).Lookup(pass.Pkg, need) != nil {
			continue
		}
		if !u.Pointer && types.NewMethodSet(types.NewPointer(passed)).Lookup(pass.Pkg, need) != nil {
			report(pass, u.Arg, "pass a pointer: &"+u.Type.Name()+"{…}",
				"DoFn %s is passed by value to %s, but its %s has a pointer receiver: the SDK finds no %s", u.Type.Name(), u.API, need, need)
			continue
		}
		report(pass, u.Arg, "give "+u.Type.Name()+" a "+need+" method",
			"DoFn %s has no %s method, which %s needs", u.Type.Name(), need, u.API)
	}
	return nil, nil
}

package analyzers

import (
	"golang.org/x/tools/go/analysis"
)

// AnonymousFn finds function literals, closures and method values passed
// as DoFns: a worker looks a function up by its name, and these have none.
var AnonymousFn = &analysis.Analyzer{
	Name: "anonymousfn",
	Doc: `report anonymous functions used as DoFns

The SDK sends a function DoFn to the workers by name. A function literal
(or a variable holding one), a closure returned by a call, a method value
or an instantiated generic function has no name a worker can resolve, and
whatever it captured stays in the launcher. Declare a top-level function
and register it, or use a registered DoFn struct whose exported fields
carry what the closure captured.`,
	Requires: []*analysis.Analyzer{graphAnalyzer},
	Run:      runAnonymousFn,
}

func runAnonymousFn(pass *analysis.Pass) (any, error) {
	g := pass.ResultOf[graphAnalyzer].(*Graph)
	const fix = "declare it as a top-level function registered with register.FunctionXxY, or use a registered DoFn struct whose exported fields carry what it captures"
	for _, u := range g.Uses {
		switch u.Kind {
		case KindLiteral:
			report(pass, u.Arg, fix, "an anonymous function is used as a DoFn in %s: workers cannot resolve it by name", u.API)
		case KindBuilt:
			report(pass, u.Arg, fix, "a function made at run time (a closure, method value or generic instance) is used as a DoFn in %s: workers cannot resolve it by name", u.API)
		}
	}
	return nil, nil
}

package analyzers

import (
	"fmt"
	"go/ast"
	"go/token"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// IgnoreDirective silences a check on the line it ends, or on the line
// below it when it stands alone: "//beamctl:ignore flagread" (several
// names separated by commas; anything after a space is the reason).
const IgnoreDirective = "//beamctl:ignore"

// report records a finding at n: msg says what is wrong and fix what to
// do, carried as the diagnostic's one suggested fix so that any driver
// can show them apart.
func report(pass *analysis.Pass, n ast.Node, fix, format string, args ...any) {
	if ignored(pass, n.Pos()) {
		return
	}
	d := analysis.Diagnostic{Pos: n.Pos(), End: n.End(), Message: fmt.Sprintf(format, args...)}
	if fix != "" {
		d.SuggestedFixes = []analysis.SuggestedFix{{Message: fix}}
	}
	pass.Report(d)
}

// ignored reports whether an ignore directive naming this check covers
// pos.
func ignored(pass *analysis.Pass, pos token.Pos) bool {
	tf := pass.Fset.File(pos)
	if tf == nil {
		return false
	}
	line := tf.Line(pos)
	for _, f := range pass.Files {
		if pass.Fset.File(f.Pos()) != tf {
			continue
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				cl := tf.Line(c.Slash)
				if cl != line && cl != line-1 {
					continue
				}
				rest, ok := strings.CutPrefix(c.Text, IgnoreDirective+" ")
				if !ok {
					continue
				}
				names, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
				for _, name := range strings.Split(names, ",") {
					if name == pass.Analyzer.Name || name == "all" {
						return true
					}
				}
			}
		}
	}
	return false
}

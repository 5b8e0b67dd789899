// Package vet checks Beam Go pipelines for the mistakes that compile and
// then fail, or compute the wrong thing, on a runner's workers: it loads
// the packages with go/packages (dependencies from the build cache's
// export data, as the launcher's build leaves it), runs the analyzers of
// vet/analyzers on them, and keeps the findings for packages whose files
// have not changed since.
package vet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"

	"github.com/beamctl/beamctl/internal/gomod"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/vet/analyzers"
)

// Options configure a check.
type Options struct {
	// Patterns name the packages, as go vet takes them. Default ".". A
	// directory pattern in a module of its own is loaded from that module.
	Patterns []string
	// WorkDir is where patterns are resolved from, and what finding
	// positions are relative to. Default: the current directory.
	WorkDir string
	// Env is the environment go list runs with (GOOS, GOARCH,
	// CGO_ENABLED… as the launcher's build has them, so that the
	// dependencies' export data is what it compiled); nil: os.Environ().
	Env []string
	// BuildFlags pass through to go list (-tags, -trimpath, -gcflags).
	BuildFlags []string
	// CacheDir keeps the findings of unchanged packages; "" keeps none.
	CacheDir string
	// Logger receives debug detail. Default: discard.
	Logger *slog.Logger
}

// Finding is one mistake in a pipeline.
type Finding struct {
	// Analyzer is the check's stable name, e.g. "unregistered".
	Analyzer string `json:"analyzer"`
	// Position is file:line:col, the file relative to WorkDir.
	Position string `json:"position"`
	// Message says what is wrong; Fix, what to do.
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s: %s (%s)", f.Position, f.Message, f.Analyzer)
	if f.Fix != "" {
		s += "\n\tfix: " + f.Fix
	}
	return s
}

// Report is the outcome of a check.
type Report struct {
	// Packages are the import paths checked.
	Packages []string  `json:"packages"`
	Findings []Finding `json:"findings"`
	// Cached reports whether the findings were kept from an earlier check
	// of the same files.
	Cached bool `json:"cached"`
}

// FindingsError is a check that found mistakes.
type FindingsError struct{ Findings []Finding }

func (e *FindingsError) Error() string { return problem.Plain(e.text()) }

// Render words the error with the caller's names for settings.
func (e *FindingsError) Render(name func(string) string) string { return problem.Sub(e.text(), name) }

func (e *FindingsError) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the pipeline has %s that would reach the workers:", Mistakes(len(e.Findings)))
	for _, f := range e.Findings {
		b.WriteString("\n" + f.String())
	}
	b.WriteString("\nfix them, silence one with " + analyzers.IgnoreDirective + " NAME on its line, or skip the checks with {Vet}=off")
	return b.String()
}

// PackageError is a package that could not be loaded or type-checked:
// go's own messages, which a build would print too.
type PackageError struct{ Errors []string }

func (e *PackageError) Error() string { return strings.Join(e.Errors, "\n") }

// Mistakes counts findings in words: "1 mistake", "3 mistakes".
func Mistakes(n int) string {
	if n == 1 {
		return "1 mistake"
	}
	return fmt.Sprintf("%d mistakes", n)
}

// Run checks the packages.
func Run(ctx context.Context, o Options) (*Report, error) {
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	if o.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		o.WorkDir = wd
	}
	if len(o.Patterns) == 0 {
		o.Patterns = []string{"."}
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	rep := &Report{Findings: []Finding{}, Cached: true}
	for _, grp := range gomod.ByModule(o.WorkDir, o.Patterns) {
		r, err := runGroup(ctx, o, grp, log)
		if err != nil {
			return nil, err
		}
		rep.Packages = append(rep.Packages, r.Packages...)
		rep.Findings = append(rep.Findings, r.Findings...)
		rep.Cached = rep.Cached && r.Cached
	}
	return rep, nil
}

func runGroup(ctx context.Context, o Options, grp gomod.Group, log *slog.Logger) (*Report, error) {
	key := cacheKey(o, grp)
	if rep, ok := readCache(o.CacheDir, key); ok {
		log.Debug("vet findings kept from an earlier check", "dir", grp.Dir, "patterns", grp.Patterns)
		return rep, nil
	}
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedCompiledGoFiles | packages.NeedImports |
			packages.NeedTypes | packages.NeedTypesInfo | packages.NeedSyntax | packages.NeedModule |
			packages.NeedEmbedFiles | packages.NeedTypesSizes,
		Context:    ctx,
		Dir:        grp.Dir,
		Env:        o.Env,
		BuildFlags: o.BuildFlags,
		Logf: func(format string, args ...any) {
			log.Debug("go/packages: " + fmt.Sprintf(format, args...))
		},
	}
	pkgs, err := packages.Load(cfg, grp.Patterns...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, problem.Usagef("name packages as go build takes them, or run in the pipeline's module", "loading %s: %v", strings.Join(grp.Patterns, " "), problem.FirstLine(err.Error())).Wrap(err)
	}
	var errs []string
	var missing error
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		typeErrs := slices.ContainsFunc(p.Errors, func(e packages.Error) bool { return e.Kind == packages.TypeError })
		for _, e := range p.Errors {
			if typeErrs && e.Kind == packages.ListError && strings.HasPrefix(e.Msg, "# ") {
				// go list's compile, saying again what type checking said.
				continue
			}
			// A pattern that names no files names no package; a package
			// with files whose compile fails is the compiler's to report.
			if len(p.GoFiles) == 0 && len(p.CompiledGoFiles) == 0 && missing == nil {
				msg, fix := strings.TrimSuffix(strings.TrimSuffix(problem.FirstLine(e.Msg), ":"), "; to add it"), "name packages as go build takes them"
				if strings.Contains(msg, "no required module provides") {
					fix = "add its module with go get, or " + fix
				}
				missing = problem.Usagef(fix, "%s", msg)
			}
			errs = append(errs, relPos(e.Error(), o.WorkDir))
		}
	})
	if missing != nil {
		return nil, missing
	}
	if len(errs) > 0 {
		return nil, &PackageError{Errors: errs}
	}
	if len(pkgs) == 0 {
		return nil, problem.Usagef("name packages as go build takes them", "%s matched no packages", strings.Join(grp.Patterns, " "))
	}
	g, err := checker.Analyze(analyzers.All, pkgs, nil)
	if err != nil {
		return nil, fmt.Errorf("checking the pipeline: %w", err)
	}
	rep := &Report{Findings: []Finding{}}
	for _, p := range pkgs {
		rep.Packages = append(rep.Packages, p.PkgPath)
	}
	var failed []error
	for act := range g.All() {
		// An analyzer that failed fails those that need it: report it
		// once, where it happened.
		if act.Err != nil && !strings.HasPrefix(act.Err.Error(), "failed prerequisites") {
			failed = append(failed, fmt.Errorf("%s on %s: %w", act.Analyzer.Name, act.Package.PkgPath, act.Err))
		}
		if !act.IsRoot || act.Err != nil {
			continue
		}
		for _, d := range act.Diagnostics {
			rep.Findings = append(rep.Findings, finding(act.Analyzer, act.Package.Fset, d, o.WorkDir))
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("checking the pipeline: %w", errors.Join(failed...))
	}
	slices.SortFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.Analyzer, b.Analyzer))
	})
	rep.Findings = slices.Compact(rep.Findings)
	writeCache(o.CacheDir, key, pkgs, rep, log)
	return rep, nil
}

func finding(a *analysis.Analyzer, fset *token.FileSet, d analysis.Diagnostic, workDir string) Finding {
	pos := fset.Position(d.Pos)
	file := pos.Filename
	file = relPath(file, workDir)
	f := Finding{
		Analyzer: a.Name,
		Position: fmt.Sprintf("%s:%d:%d", file, pos.Line, pos.Column),
		Message:  d.Message,
	}
	if len(d.SuggestedFixes) > 0 {
		f.Fix = d.SuggestedFixes[0].Message
	}
	return f
}

// relPos makes an absolute file position at the start of a go message
// relative to workDir.
func relPos(msg, workDir string) string {
	file, rest, ok := strings.Cut(msg, ":")
	if !ok || !filepath.IsAbs(file) {
		return msg
	}
	return relPath(file, workDir) + ":" + rest
}

// relPath is file relative to workDir when that is the shorter way to
// name it, as go names files in its messages.
func relPath(file, workDir string) string {
	if rel, err := filepath.Rel(workDir, file); err == nil && len(rel) < len(file) {
		return rel
	}
	return file
}

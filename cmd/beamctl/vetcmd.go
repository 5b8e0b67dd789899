package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/vet"
)

const vetLong = `Check Beam Go pipelines for the mistakes that compile, pass a local run,
and then fail or compute the wrong thing on a runner's workers:

  unexportedfield  a DoFn field set at construction that is not encoded
                   (unexported, or tagged json:"-"): workers see its zero value
  flagread         a DoFn, or what it calls, reads a flag variable: workers
                   see its default, not the launcher's value
  unregistered     a DoFn, function or element type used in the graph and
                   registered nowhere: workers cannot resolve it
  anonymousfn      a function literal, closure or method value used as a
                   DoFn: workers cannot resolve it by name
  dofnmethod       a DoFn struct without the method its transform needs,
                   e.g. passed by value with pointer-receiver methods

PKG... are package patterns as go vet takes them; default ".". Packages are
loaded as the launcher compiles (CGO_ENABLED=0, -trimpath, --tags), and the
findings for unchanged files are kept, so a second check is immediate.

Silence a finding with a comment on its line, or alone on the line above,
that names the check: //beamctl:ignore flagread (names separated by commas,
then the reason).

build, run and stage run the same checks while they compile and refuse a
pipeline with findings; --vet=off (BEAMCTL_VET=off, vet: off in
beamctl.yaml) skips them.

Exit status: 0 no findings, 1 findings (or a package that does not
compile), 2 usage.`

func newVetCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vet [PKG...]",
		Short: "Check pipelines for mistakes that would reach the workers",
		Long:  vetLong,
		Example: `  beamctl vet ./examples/wordcount
  beamctl vet ./... --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			first := "."
			if len(args) > 0 {
				first = args[0]
			}
			if err := a.setup(cmd, pipelineDir(cmd.Context(), first)); err != nil {
				return err
			}
			tc, err := build.FindToolchain(cmd.Context(), nil)
			if err != nil {
				return err
			}
			o := build.Options{Tags: a.v.GetString("tags"), CacheDir: a.v.GetString("cache-dir"), Toolchain: tc, Logger: a.log}
			rep, err := vet.Run(cmd.Context(), o.VetOptions(args...))
			var pe *vet.PackageError
			if errors.As(err, &pe) {
				for _, e := range pe.Errors {
					fmt.Fprintln(a.stderr, e)
				}
				return &codeError{code: exitFailure}
			}
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(rep.Findings); err != nil {
					return err
				}
			} else {
				for _, f := range rep.Findings {
					fmt.Fprintln(a.stderr, f)
				}
			}
			if len(rep.Findings) > 0 {
				return &codeError{code: exitFailure}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("tags", "", "build tags, as go build -tags takes them")
	f.String("cache-dir", "", "where reusable build outputs and check results are kept (default: the user cache directory)")
	declareSettings(f, fields{"tags": nil, "cache-dir": {"CacheDir"}})
	return cmd
}

// addVetFlag registers --vet on the commands that check while they build.
func addVetFlag(f *pflag.FlagSet) {
	f.String("vet", "on", `check the pipeline for mistakes that would reach the workers while it compiles (beamctl vet): "on" or "off"`)
	declareSettings(f, fields{"vet": {"Vet"}})
}

// vetOn reads --vet.
func (a *app) vetOn() (bool, error) {
	switch v := a.v.GetString("vet"); v {
	case "on", "true", "":
		return true, nil
	case "off", "false":
		return false, nil
	default:
		return false, badValue("vet", "--vet %q is not a choice: use on or off", v)
	}
}

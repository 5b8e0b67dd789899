package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// configRow is one setting as config view shows it.
type configRow struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the settings beamctl uses and where each comes from",
	}
	view := &cobra.Command{
		Use:   "view [DIR] [flags]",
		Short: "Show every setting's effective value and its source: flag, environment, FILE:LINE (profile), or default",
		Long: `Show every setting's effective value and where it comes from, for a
pipeline in DIR (default "."): a flag given here, a BEAMCTL_* variable, a
line of a beamctl.yaml (and the profile chosen with --profile or
BEAMCTL_PROFILE), or the default. Precedence, highest first: flags,
variables, the profile, the files' top level (the pipeline directory's over
the user config directory's), defaults.`,
		Example: `  beamctl config view
  beamctl config view ./pipeline --profile prod
  BEAMCTL_ENDPOINT=localhost:8099 beamctl config view --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.setupPipeline(cmd, args); err != nil {
				return err
			}
			keys := slices.Sorted(maps.Keys(a.keys))
			var rows []configRow
			for _, k := range keys {
				rows = append(rows, configRow{Key: k, Value: a.v.Get(k), Source: a.cfg.source(cmd.Flags(), k)})
			}
			if a.json {
				return a.printJSON(struct {
					Profile  string      `json:"profile,omitempty"`
					Files    []string    `json:"files"`
					Settings []configRow `json:"settings"`
				}{a.cfg.profile, append([]string{}, a.cfg.files...), rows})
			}
			if a.cfg.profile != "" {
				fmt.Fprintf(a.stdout, "profile %s\n", a.cfg.profile)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Key, valueText(r.Value), r.Source)
			}
			return tw.Flush()
		},
	}
	// Every setting is a flag here too: its default, and a flag given here
	// shows as the source that wins.
	f := view.Flags()
	addBuildFlags(f)
	addLaunchFlags(f)
	addDebugFlags(f)
	f.Bool("boot", false, "see beamctl build")
	f.String("oci-layout", "", "see beamctl stage")
	f.String("tarball", "", "see beamctl stage")
	f.StringSlice("emit", nil, "see beamctl stage")
	declareSettings(f, fields{"boot": {"Boot"}})
	declareSettings(f, stageOnly)
	addTestFlags(f)
	cmd.AddCommand(view)
	return cmd
}

func valueText(v any) string {
	switch x := v.(type) {
	case []string:
		return strings.Join(x, ",")
	case []any:
		var parts []string
		for _, p := range x {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

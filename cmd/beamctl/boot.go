package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/cmd/internal/bootcmd"
)

// declareBootFields records the option fields that the flags bootcmd
// registered on f fill.
func declareBootFields(f *pflag.FlagSet) {
	fs := fields{}
	for field, name := range bootcmd.Fields {
		if f.Lookup(name) != nil {
			fs[name] = append(fs[name], field)
		}
	}
	declareFields(f, fs)
}

func newBootCmd(a *app) *cobra.Command {
	var f bootcmd.Flags
	cmd := &cobra.Command{
		Use:     "boot --id ID --provision_endpoint HOST:PORT [flags]",
		Short:   bootcmd.Short,
		Long:    bootcmd.Long,
		Example: bootcmd.Example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			c := bootcmd.Config{Self: []string{"boot"}, Stdout: a.stdout, Stderr: a.stderr, Verbose: a.v.GetBool("verbose")}
			return c.Run(cmd.Context(), f, cmd.Flags().Changed, a.log)
		},
	}
	bootcmd.Register(cmd.Flags(), &f)
	declareBootFields(cmd.Flags())
	return cmd
}

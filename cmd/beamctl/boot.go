package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/cmd/internal/bootcmd"
)

func newBootCmd(a *app) *cobra.Command {
	return bootcmd.New(bootcmd.Config{
		Use:    "boot --id ID --provision_endpoint HOST:PORT [flags]",
		Self:   []string{"boot"},
		Stdout: a.stdout,
		Stderr: a.stderr,
		Setup: func(cmd *cobra.Command) (*slog.Logger, error) {
			if err := a.setup(cmd, ""); err != nil {
				return nil, err
			}
			return a.log, nil
		},
		Verbose: func() bool { return a.v.GetBool("verbose") },
	})
}

// Command beamctl-boot is the entrypoint of Beam Go worker images: Beam's
// container contract, exactly as beamctl boot performs it, in a small
// binary without beamctl's build, submit and embedded runner.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/cmd/internal/bootcmd"
	"github.com/beamctl/beamctl/cmd/internal/words"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the boot command with args and returns the exit code.
// Signals end a worker pool; a worker gets them itself.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var verbose bool
	cmd := bootcmd.New(bootcmd.Config{
		Use:    "beamctl-boot --id ID --provision_endpoint HOST:PORT [flags]",
		Stdout: stdout,
		Stderr: stderr,
		Setup: func(*cobra.Command) (*slog.Logger, error) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
		},
		Verbose: func() bool { return verbose },
	})
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug detail to stderr")
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &bootcmd.UsageError{Msg: err.Error() + ": see --help"}
	})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *bootcmd.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintln(stderr, "beamctl-boot: "+strings.TrimRight(words.Error(err), "\n"))
	var usage *bootcmd.UsageError
	if errors.As(err, &usage) {
		return 2
	}
	return 1
}

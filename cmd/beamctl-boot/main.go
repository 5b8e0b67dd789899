// Command beamctl-boot is the entrypoint of Beam Go worker images: Beam's
// container contract, exactly as beamctl boot performs it, in a small
// binary without beamctl's build, submit and embedded runner.
//
// It parses its flags with the standard library alone: worker images build
// it inside the pipeline's own module graph.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/beamctl/beamctl/cmd/internal/bootcmd"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the boot command with args and returns the exit code.
// Signals end a worker pool; a worker gets them itself.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("beamctl-boot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f bootcmd.Flags
	var verbose bool
	bootcmd.Register(fs, &f)
	fs.BoolVar(&verbose, "verbose", false, "log debug detail to stderr")
	fs.BoolVar(&verbose, "v", false, "log debug detail to stderr (short for --verbose)")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout, fs)
		return 0
	case err != nil:
		return fail(stderr, &bootcmd.UsageError{Msg: err.Error() + ": see --help"})
	case fs.NArg() > 0:
		return fail(stderr, &bootcmd.UsageError{Msg: fmt.Sprintf("unexpected argument %q: boot takes only flags; see --help", fs.Arg(0))})
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	c := bootcmd.Config{Stdout: stdout, Stderr: stderr, Verbose: verbose}
	return fail(stderr, c.Run(ctx, f, func(name string) bool { return set[name] }, log))
}

// fail reports err, if any, and returns the exit code it means.
func fail(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var exit *bootcmd.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintln(stderr, "beamctl-boot: "+strings.TrimRight(bootcmd.Message(err), "\n"))
	var usage *bootcmd.UsageError
	if errors.As(err, &usage) {
		return 2
	}
	return 1
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  beamctl-boot --id ID --provision_endpoint HOST:PORT [flags]\n\nExamples:\n%s\n\nFlags:\n",
		bootcmd.Long, strings.ReplaceAll(bootcmd.Example, "beamctl boot", "beamctl-boot"))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

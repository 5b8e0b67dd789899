package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/suggest"
)

// app is what every command shares: the streams, and the settings and
// logger of the invocation once its configuration is loaded.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configFile string
	profile    string
	cfg        *config
	v          *viper.Viper
	log        *slog.Logger
	json       bool
	exitCode   int
	// digests is the invocation's digest cache: each file is hashed at
	// most once.
	digests *digest.Cache
	// pipelineDir is the directory whose beamctl.yaml applies.
	pipelineDir string
	// cmd is the command whose settings cfg holds.
	cmd *cobra.Command
	// abort ends at a second interrupt: waits that outlive the first (for
	// a cancelled job to stop) end at once.
	abort context.Context
	// keys are the settings of every command: what beamctl.yaml and
	// BEAMCTL_ variables may set.
	keys map[string]kind
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "beamctl",
		Short: "Build, stage and run Apache Beam Go pipelines",
		Long: `beamctl takes an Apache Beam Go pipeline from source to a running job.

It builds a launcher for this machine and a worker for each target platform,
stages the worker, submits the job and follows it.

Exit codes:
  0    success; the job is DONE
  1    failure: build, job FAILED, worker failed, job server or registry
       unreachable or refusing
  2    usage or configuration: bad flag, target, package, config file,
       profile, missing toolchain or qemu-user
  3    the job was CANCELLED
  130  interrupted (Ctrl-C)

With --output json, stdout carries JSON only (docs/reference/json.md).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFile, "config", "", "configuration file (default: beamctl.yaml in the pipeline's directory, then in the user config directory)")
	pf.StringVar(&a.profile, "profile", "", "settings profile of beamctl.yaml to use (or BEAMCTL_PROFILE)")
	pf.StringP("output", "o", "text", "output format: text or json")
	pf.BoolP("verbose", "v", false, "log debug detail to stderr")
	declareSettings(pf, fields{"output": nil, "verbose": nil})
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newBuildCmd(a), newRunCmd(a), newSubmitCmd(a), newJobsCmd(a), newVersionCmd(a), newBootCmd(a), newWorkerPoolCmd(a), newStageCmd(a), newConfigCmd(a), newDoctorCmd(a), newVetCmd(a), newTestCmd(a), newTestExecCmd(a), newGraphCmd(a), newVerifyCmd(a))
	root.AddCommand(newManCmd(root))
	root.InitDefaultCompletionCmd()
	registerCompletions(a, root)
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "Generate the shell completion script for bash, zsh, fish or powershell"
		}
	}
	usageArgs(root)
	keys, err := settingKinds(root)
	if err != nil {
		panic("beamctl: " + err.Error())
	}
	a.keys = keys
	return root
}

// usageArgs makes wrong arguments usage errors (exit 2) in c and the
// commands under it, with the usage line as the fix: cobra's own are
// plain errors.
func usageArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			var inv interface{ Invalid() bool }
			if err == nil || errors.As(err, &inv) {
				return err
			}
			return usagef("%v: usage is %s", err, cmd.UseLine())
		}
	}
}

// typoEdits is how many edits away a name may be to be suggested for a
// mistyped one.
const typoEdits = 2

// unknownCommand finds, before cobra runs, a command name that names no
// command of its group: cobra reports one under the root as a plain error,
// and one under another group (beamctl jobs bogus) not at all, printing the
// group's help as if asked for it.
func unknownCommand(root *cobra.Command, args []string) error {
	cmd := root
	for _, a := range args {
		if strings.HasPrefix(a, "-") || !cmd.HasSubCommands() {
			return nil
		}
		var next *cobra.Command
		for _, sub := range cmd.Commands() {
			if sub.Name() == a || sub.HasAlias(a) {
				next = sub
			}
		}
		if next == nil {
			if a == "help" || strings.HasPrefix(a, "__") {
				return nil
			}
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			fix := "see " + cmd.CommandPath() + " --help"
			if near, ok := suggest.Close(a, names, typoEdits); ok {
				fix = "did you mean " + cmd.CommandPath() + " " + near + "?"
			}
			return usagef("unknown command %q for %s: %s", a, cmd.CommandPath(), fix)
		}
		cmd = next
	}
	return nil
}

// flagError words a flag cobra could not parse: a misspelt flag of the
// command gets the right one, and under run and submit a flag that is
// none of beamctl's is most likely the pipeline's, given before --.
func flagError(cmd *cobra.Command, err error) error {
	name, unknown := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !unknown {
		if takesPipelineArgs(cmd) && strings.HasPrefix(err.Error(), "unknown shorthand flag") {
			return usagef("%v: pipeline arguments go after --, e.g. %s", err, pipelineExample(cmd, "input"))
		}
		return &usageError{msg: err.Error() + ": see --help"}
	}
	name, _, _ = strings.Cut(name, "=")
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	if near, ok := suggest.Close(name, names, typoEdits); ok {
		return usagef("%v: did you mean --%s?", err, near)
	}
	if takesPipelineArgs(cmd) {
		return usagef("%v: pipeline arguments go after --, e.g. %s", err, pipelineExample(cmd, name))
	}
	return &usageError{msg: err.Error() + ": see --help"}
}

// pipelineExample is cmd's command line with the pipeline flag name after
// --.
func pipelineExample(cmd *cobra.Command, name string) string {
	from := "./pipeline"
	if cmd.Name() == "submit" {
		from = "dist"
	}
	return fmt.Sprintf("%s %s -- --%s=…", cmd.CommandPath(), from, name)
}

// takesPipelineArgs tells the commands that pass arguments after -- to the
// pipeline, where a pipeline flag given before -- is a likely mistake.
func takesPipelineArgs(cmd *cobra.Command) bool {
	return cmd.Name() == "run" || cmd.Name() == "submit" || cmd.Name() == "graph" && cmd.Parent() == cmd.Root()
}

// setup loads the configuration for cmd, looking for beamctl.yaml in
// pipelineDir, and prepares the logger and output format.
func (a *app) setup(cmd *cobra.Command, pipelineDir string) error {
	c, err := loadConfig(cmd.Flags(), a.keys, a.configFile, pipelineDir, a.profile)
	if err != nil {
		return err
	}
	a.cfg, a.cmd = c, cmd
	v, files := c.v, c.files
	a.v = v
	a.pipelineDir = pipelineDir
	switch out := v.GetString("output"); out {
	case "text":
	case "json":
		a.json = true
	default:
		if f := cmd.Flags().Lookup("output"); f != nil && f.Changed && takesPipelineArgs(cmd) {
			return badValue("output", "--output %q is not a format: use text or json (a pipeline's own --output goes after --)", out)
		}
		return badValue("output", "--output %q is not a format: use text or json", out)
	}
	level := slog.LevelInfo
	if v.GetBool("verbose") {
		level = slog.LevelDebug
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	for _, f := range files {
		a.log.Debug("read configuration", "file", f)
	}
	return nil
}

// stderrIsTerminal decides between live progress and plain log lines.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printJSONLine prints v as one line of JSON, for streams of records.
func (a *app) printJSONLine(v any) error {
	return json.NewEncoder(a.stdout).Encode(v)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// setupPipeline is setup for a command that takes at most one PKG
// argument, default ".", whose beamctl.yaml applies; it returns PKG.
func (a *app) setupPipeline(cmd *cobra.Command, args []string) (string, error) {
	pkg := "."
	if len(args) == 1 {
		pkg = args[0]
	}
	return pkg, a.setup(cmd, pipelineDir(cmd.Context(), pkg))
}

// pipelineDir is the directory whose beamctl.yaml applies to PKG: the
// package's directory, whether PKG names it on disk or by import path,
// else the current directory.
func pipelineDir(ctx context.Context, pkg string) string {
	if pkg != "" {
		if fi, err := os.Stat(pkg); err == nil && fi.IsDir() {
			if abs, err := filepath.Abs(pkg); err == nil {
				return abs
			}
		}
		if dir, ok := build.PackageDir(ctx, pkg); ok {
			return dir
		}
	}
	wd, _ := os.Getwd()
	return wd
}

// changed reports whether the user set key on any layer: flag,
// environment or config file.
func (a *app) changed(flags *pflag.FlagSet, key string) bool {
	if f := flags.Lookup(key); f != nil && f.Changed {
		return true
	}
	return a.v.InConfig(key) || os.Getenv(envName(key)) != ""
}

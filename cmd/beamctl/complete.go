package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/graph"
	"github.com/beamctl/beamctl/launch"
	"github.com/beamctl/beamctl/submit"
)

// completeTimeout bounds what a completion may ask of the toolchain or a
// job server: a shell waits for it at every tab.
const completeTimeout = 2 * time.Second

// commonTargets are offered when the toolchain cannot be asked.
var commonTargets = []string{"host", "linux/amd64", "linux/arm64"}

// registerCompletions completes flag values and arguments from what this
// machine, the configuration and the job server know. Failures complete
// nothing rather than print.
func registerCompletions(a *app, root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		fl := c.Flags()
		if fl.Lookup("target") != nil {
			c.RegisterFlagCompletionFunc("target", completeTargets)
		}
		if fl.Lookup("environment") != nil {
			c.RegisterFlagCompletionFunc("environment", fixedValues(environmentNames()...))
		}
		if c.Name() == "beamctl" {
			c.RegisterFlagCompletionFunc("output", fixedValues("text", "json"))
			c.RegisterFlagCompletionFunc("profile", a.completeProfiles)
		}
		if c.Name() == "graph" {
			c.RegisterFlagCompletionFunc("format", fixedValues(graphFormats()...))
		}
		jobsCmd := c.Parent() != nil && c.Parent().Name() == "jobs"
		switch name := c.Name(); {
		case name == "build", name == "run", name == "stage":
			c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
		case name == "submit":
			if c.ValidArgsFunction == nil {
				c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
					return nil, cobra.ShellCompDirectiveFilterDirs
				}
			}
		case jobsCmd && slices.Contains([]string{"status", "cancel", "logs", "metrics", "graph"}, name):
			c.ValidArgsFunction = a.completeJobs
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func graphFormats() []string {
	var out []string
	for _, f := range graph.Formats {
		out = append(out, string(f))
	}
	return out
}

func environmentNames() []string {
	var out []string
	for _, e := range launch.Environments {
		out = append(out, string(e))
	}
	return out
}

func fixedValues(vals ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return withPrefix(vals, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

func withPrefix(vals []string, prefix string) []string {
	var out []string
	for _, v := range vals {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}

// completeTargets offers the toolchain's platforms (and their variants)
// that the Beam SDK builds for, after any targets already given in the
// same comma-separated value.
func completeTargets(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	done, cur := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done, cur = toComplete[:i+1], toComplete[i+1:]
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	names := commonTargets
	if tc, err := build.FindToolchain(ctx, nil); err == nil {
		names = []string{"host"}
		for _, p := range tc.Platforms {
			if !build.SDKBuilds(p) {
				continue
			}
			names = append(names, p.String())
			if p.Arch == "arm64" {
				continue // arm64/v8 is arm64
			}
			for _, v := range build.Variants(p.Arch) {
				names = append(names, p.String()+"/"+v)
			}
		}
	}
	var out []string
	for _, n := range withPrefix(names, cur) {
		out = append(out, done+n)
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeJobs offers the job server's job ids, with their names and
// states as descriptions.
func (a *app) completeJobs(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if err := a.setup(cmd, ""); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	o, err := a.dialOptions()
	if err != nil || a.v.GetString("endpoint") == "" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	o.ConnectTimeout = completeTimeout
	o.Logger = nil
	conn, err := submit.Dial(ctx, a.v.GetString("endpoint"), o)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer conn.Close()
	jobs, err := submit.ListJobs(ctx, conn)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, j := range jobs {
		if strings.HasPrefix(j.ID, prefix) {
			out = append(out, j.ID+"\t"+j.Name+" ("+j.State.String()+")")
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeProfiles offers the profiles the config files define.
func (a *app) completeProfiles(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	var files []string
	if a.configFile != "" {
		files = []string{a.configFile}
	} else {
		if dir, err := os.UserConfigDir(); err == nil {
			files = appendIfExists(files, filepath.Join(dir, "beamctl", ConfigFile))
		}
		files = appendIfExists(files, filepath.Join(pipelineDir(context.Background(), "."), ConfigFile))
	}
	var names []string
	for _, f := range files {
		cf, err := readConfigFile(f, a.keys)
		if err != nil {
			continue
		}
		for n := range cf.profiles {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return withPrefix(slices.Compact(names), prefix), cobra.ShellCompDirectiveNoFileComp
}

package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Each of beamctl's settings is a flag, and a BEAMCTL_ variable and a
// beamctl.yaml key of the same name; library errors name a setting by the
// option field it fills ({Jobs}, see internal/problem). Both facts live on
// the flag, as annotations made where it is defined, so the flags are the
// one table: which keys a file may set and with what kind of value, which
// flag an error's field is, and where a value at fault came from.
const (
	settingAnnotation = "beamctl/setting"
	fieldsAnnotation  = "beamctl/fields"
)

// fields maps flag names to the option fields each fills.
type fields map[string][]string

// declareSettings makes flags of f settings, each filling its fields.
func declareSettings(f *pflag.FlagSet, flags fields) {
	annotate(f, flags, true)
}

// declareFields records the fields that flags of f fill which are no
// settings: they are read from the command line alone.
func declareFields(f *pflag.FlagSet, flags fields) {
	annotate(f, flags, false)
}

func annotate(f *pflag.FlagSet, flags fields, setting bool) {
	for name, fs := range flags {
		fl := f.Lookup(name)
		if fl == nil {
			panic("beamctl: no flag --" + name + " to declare")
		}
		if fl.Annotations == nil {
			fl.Annotations = map[string][]string{}
		}
		if setting {
			fl.Annotations[settingAnnotation] = nil
		}
		if len(fs) > 0 {
			fl.Annotations[fieldsAnnotation] = fs
		}
	}
}

func isSetting(f *pflag.Flag) bool {
	_, ok := f.Annotations[settingAnnotation]
	return ok
}

// kinds of flag values, by pflag's names for them.
var flagKinds = map[string]kind{
	"string":      kString,
	"bool":        kBool,
	"int":         kInt,
	"stringSlice": kStrings,
	"stringArray": kStrings,
	"duration":    kDuration,
}

// settingKinds are the settings of every command under root, with the
// kind of value each takes. A key two commands define with different
// kinds is a mistake in beamctl's own flags.
func settingKinds(root *cobra.Command) (map[string]kind, error) {
	out := map[string]kind{}
	var err error
	visitFlags(root, func(_ *cobra.Command, f *pflag.Flag) {
		if !isSetting(f) || err != nil {
			return
		}
		k, ok := flagKinds[f.Value.Type()]
		if !ok {
			err = fmt.Errorf("setting %s has a value of type %s, which beamctl.yaml cannot hold", f.Name, f.Value.Type())
			return
		}
		if prev, ok := out[f.Name]; ok && prev != k {
			err = fmt.Errorf("setting %s is %s in one command and %s in another", f.Name, prev, k)
			return
		}
		out[f.Name] = k
	})
	return out, err
}

// visitFlags calls fn for every flag of every command under root.
func visitFlags(root *cobra.Command, fn func(*cobra.Command, *pflag.Flag)) {
	root.LocalFlags().VisitAll(func(f *pflag.Flag) { fn(root, f) })
	for _, c := range root.Commands() {
		visitFlags(c, fn)
	}
}

// arguments word the fields that a command's arguments fill.
var arguments = map[string]string{
	"Build": "PKG",
	"Dist":  "DIST",
	// A password is no flag: it would show in the process list.
	"SignPassword": "BEAMCTL_SIGN_PASSWORD (or COSIGN_PASSWORD)",
}

// wording says how the user of cmd sets each option field a library error
// names: a flag of cmd, else another command's flag (beamctl build
// --boot), else the argument that fills it, else the field as it is.
func wording(cmd *cobra.Command) func(field string) string {
	own := map[string]string{}
	fill := func(to map[string]string, prefix string) func(*pflag.Flag) {
		return func(f *pflag.Flag) {
			for _, field := range f.Annotations[fieldsAnnotation] {
				if _, ok := to[field]; !ok {
					to[field] = prefix + "--" + f.Name
				}
			}
		}
	}
	cmd.LocalFlags().VisitAll(fill(own, ""))
	cmd.InheritedFlags().VisitAll(fill(own, ""))
	others := map[string]string{}
	root := cmd.Root()
	var cmds []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		cmds = append(cmds, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	// A field another command fills is worded by the first such command,
	// in the order of their names, so the wording does not depend on map
	// order.
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].CommandPath() < cmds[j].CommandPath() })
	for _, c := range cmds {
		if c != cmd {
			c.LocalFlags().VisitAll(fill(others, c.CommandPath()+" "))
		}
	}
	return func(field string) string {
		if w, ok := own[field]; ok {
			return w
		}
		if a, ok := arguments[field]; ok {
			return a
		}
		if w, ok := others[field]; ok {
			return w
		}
		return field
	}
}

// flagOf is the flag of cmd that fills field, if one does.
func flagOf(cmd *cobra.Command, field string) (string, bool) {
	w := wording(cmd)(field)
	name, ok := strings.CutPrefix(w, "--")
	return name, ok
}

package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beamctl/beamctl/internal/suggest"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// ConfigFile is the name beamctl looks for in the pipeline's directory
// and in the user config directory.
const ConfigFile = "beamctl.yaml"

type kind int

const (
	kString kind = iota
	kBool
	kInt
	kStrings
	kDuration
)

func (k kind) String() string {
	return [...]string{"a string", "true or false", "a whole number", "a list of strings", "a duration such as 30s or 2m"}[k]
}

// ConfigError is a configuration value beamctl cannot use.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// Invalid marks the error as a problem with the user's input.
func (e *ConfigError) Invalid() bool { return true }

func configErr(format string, a ...any) error { return &ConfigError{fmt.Sprintf(format, a...)} }

// config is one invocation's settings and where each came from.
type config struct {
	v     *viper.Viper
	files []string
	// from says where each key set in a file came from: "FILE:LINE", with
	// the profile when one set it.
	from map[string]string
	// profile is the chosen profile, if any.
	profile string
	// values are the files' settings, merged.
	values map[string]any
}

// loadConfig builds the settings for one command: flags, then BEAMCTL_*
// variables, then the chosen profile, then the config files' top-level
// settings, then flag defaults. explicit, if set, replaces the config file
// search; otherwise the user config directory's file is read, then the
// pipeline directory's file over it. profile (or BEAMCTL_PROFILE) chooses
// a profile that some file defines.
func loadConfig(flags *pflag.FlagSet, keys map[string]kind, explicit, pipelineDir, profile string) (*config, error) {
	c := &config{v: viper.New(), from: map[string]string{}, values: map[string]any{}}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return nil, configErr("config file %s cannot be read: %v: check the --config path", explicit, errors.Unwrap(err))
		}
		c.files = append(c.files, explicit)
	} else {
		if dir, err := os.UserConfigDir(); err == nil {
			c.files = appendIfExists(c.files, filepath.Join(dir, "beamctl", ConfigFile))
		}
		if pipelineDir != "" {
			c.files = appendIfExists(c.files, filepath.Join(pipelineDir, ConfigFile))
		}
	}
	if profile == "" {
		profile = os.Getenv("BEAMCTL_PROFILE")
	}
	c.profile = profile
	var parsed []*configFile
	for _, f := range c.files {
		cf, err := readConfigFile(f, keys)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, cf)
		c.merge(cf.settings, f)
	}
	if profile != "" {
		found := false
		var defined []string
		for i, cf := range parsed {
			if p, ok := cf.profiles[profile]; ok {
				found = true
				c.merge(p, c.files[i])
			}
			for name := range cf.profiles {
				defined = append(defined, name)
			}
		}
		if !found {
			slices.Sort(defined)
			defined = slices.Compact(defined)
			if len(defined) == 0 {
				return nil, configErr("profile %q is not defined: no config file defines profiles (%s): add profiles: {%s: {...}} to beamctl.yaml", profile, fileList(c.files), yamlKey(profile))
			}
			return nil, configErr("profile %q is not defined: choose one of %s with --profile (or BEAMCTL_PROFILE)", profile, strings.Join(defined, ", "))
		}
	}
	if err := c.v.MergeConfigMap(c.values); err != nil {
		return nil, configErr("%s: %v", fileList(c.files), err)
	}
	for key, k := range keys {
		env := envName(key)
		if val, ok := os.LookupEnv(env); ok {
			if err := checkScalar(k, val); err != nil {
				return nil, configErr("%s=%q is not %s: fix or unset %s", env, val, k, env)
			}
		}
		_ = c.v.BindEnv(key, env)
	}
	var bindErr error
	flags.VisitAll(func(f *pflag.Flag) {
		if isSetting(f) && bindErr == nil {
			bindErr = c.v.BindPFlag(f.Name, f)
		}
	})
	return c, bindErr
}

// merge takes values from one file's settings (top level or a profile)
// over those taken before; they rank below variables and flags.
func (c *config) merge(s *fileSettings, file string) {
	for k, v := range s.values {
		c.values[k] = v
		where := fmt.Sprintf("%s:%d", file, s.lines[k])
		if s.profile != "" {
			where += " (profile " + s.profile + ")"
		}
		c.from[k] = where
	}
}

// source says where the value of key comes from.
func (c *config) source(flags *pflag.FlagSet, key string) string {
	if f := flags.Lookup(key); f != nil && f.Changed {
		return "flag --" + key
	}
	if _, ok := os.LookupEnv(envName(key)); ok {
		return "env " + envName(key)
	}
	if w, ok := c.from[key]; ok {
		return w
	}
	return "default"
}

// envName is the BEAMCTL_ variable that sets key.
func envName(key string) string {
	return "BEAMCTL_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

func fileList(files []string) string {
	if len(files) == 0 {
		return "none found"
	}
	return strings.Join(files, ", ")
}

func appendIfExists(files []string, p string) []string {
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return append(files, p)
	}
	return files
}

// fileSettings are the settings of one level of a config file.
type fileSettings struct {
	values  map[string]any
	lines   map[string]int
	profile string
}

// configFile is one parsed beamctl.yaml.
type configFile struct {
	settings *fileSettings
	profiles map[string]*fileSettings
}

// readConfigFile parses a beamctl.yaml, checking every key and value so a
// typo is reported with its line instead of being silently ignored.
func readConfigFile(path string, keys map[string]kind) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, configErr("config file %s cannot be read: %v", path, errors.Unwrap(err))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if l, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(l, "line ") {
			return nil, configErr("%s:%s: malformed YAML: %s", path, strings.TrimPrefix(l, "line "), rest)
		}
		return nil, configErr("%s: malformed YAML: %s", path, msg)
	}
	out := &configFile{settings: &fileSettings{values: map[string]any{}, lines: map[string]int{}}, profiles: map[string]*fileSettings{}}
	if len(doc.Content) == 0 {
		return out, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, configErr("%s:%d: expected key: value settings at the top level", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		if kn.Value != "profiles" {
			if err := readSetting(path, keys, kn, vn, out.settings); err != nil {
				return nil, err
			}
			continue
		}
		if vn.Kind != yaml.MappingNode {
			return nil, configErr("%s:%d: profiles must map names to settings, e.g. profiles: {prod: {endpoint: host:8099}}", path, vn.Line)
		}
		for j := 0; j+1 < len(vn.Content); j += 2 {
			name, body := vn.Content[j], vn.Content[j+1]
			if body.Kind != yaml.MappingNode {
				return nil, configErr("%s:%d: profile %q must map keys to values", path, body.Line, name.Value)
			}
			ps := &fileSettings{values: map[string]any{}, lines: map[string]int{}, profile: name.Value}
			for k := 0; k+1 < len(body.Content); k += 2 {
				if body.Content[k].Value == "profiles" {
					return nil, configErr("%s:%d: profiles cannot be nested", path, body.Content[k].Line)
				}
				if err := readSetting(path, keys, body.Content[k], body.Content[k+1], ps); err != nil {
					return nil, err
				}
			}
			out.profiles[name.Value] = ps
		}
	}
	return out, nil
}

// readSetting checks and records one key: value.
func readSetting(path string, keys map[string]kind, kn, vn *yaml.Node, into *fileSettings) error {
	k, ok := keys[kn.Value]
	if !ok {
		hint := ""
		if s := nearestKey(kn.Value, keys); s != "" {
			hint = fmt.Sprintf(": did you mean %q?", s)
		} else {
			hint = ": remove it"
		}
		return configErr("%s:%d: unknown key %q%s", path, kn.Line, kn.Value, hint)
	}
	val, err := decodeValue(k, vn)
	if err != nil {
		return configErr("%s:%d: key %q must be %s, not %s", path, vn.Line, kn.Value, k, err)
	}
	into.values[kn.Value] = val
	into.lines[kn.Value] = kn.Line
	return nil
}

func decodeValue(k kind, n *yaml.Node) (any, error) {
	if k == kStrings {
		switch n.Kind {
		case yaml.ScalarNode:
			return []string{n.Value}, nil
		case yaml.SequenceNode:
			var out []string
			for _, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("a nested value")
				}
				out = append(out, c.Value)
			}
			return out, nil
		}
		return nil, fmt.Errorf("a mapping")
	}
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("a list or mapping")
	}
	if err := checkScalar(k, n.Value); err != nil {
		return nil, fmt.Errorf("%q", n.Value)
	}
	return n.Value, nil
}

func checkScalar(k kind, s string) error {
	var err error
	switch k {
	case kBool:
		_, err = strconv.ParseBool(s)
	case kInt:
		_, err = strconv.Atoi(s)
	case kDuration:
		_, err = parseDuration(s)
	}
	return err
}

func nearestKey(s string, keys map[string]kind) string {
	if best := suggest.Nearest(s, slices.Collect(maps.Keys(keys)), 1, nil); len(best) == 1 && suggest.Distance(s, best[0]) <= 2 {
		return best[0]
	}
	return ""
}

func parseDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }

// yamlKey writes name as a YAML mapping key: as it is when it is a plain
// word, else double-quoted, which also keeps a message holding it on one
// line.
func yamlKey(name string) string {
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
		}
	}
	if plain {
		return name
	}
	return strconv.Quote(name)
}

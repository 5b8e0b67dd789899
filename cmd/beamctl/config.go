package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// settings are the keys a config file or BEAMCTL_* variable may set; each
// is also the name of the flag it backs.
var settings = map[string]kind{
	"output":    kString,
	"verbose":   kBool,
	"target":    kStrings,
	"out":       kString,
	"jobs":      kInt,
	"tags":      kString,
	"ldflags":   kString,
	"gcflags":   kString,
	"debug":     kBool,
	"strip":     kBool,
	"force":     kBool,
	"cache-dir": kString,
	"boot":      kBool,

	"job-name":           kString,
	"capture-timeout":    kDuration,
	"endpoint":           kString,
	"connect-timeout":    kDuration,
	"tls":                kBool,
	"tls-ca":             kString,
	"tls-server-name":    kString,
	"environment":        kString,
	"environment-config": kString,
	"loopback-address":   kString,
	"expose":             kBool,
	"detach":             kBool,

	"debug-addr":     kString,
	"debug-wait":     kBool,
	"debug-launcher": kBool,
	"dlv":            kString,

	"image":             kString,
	"base":              kString,
	"label":             kStrings,
	"insecure-registry": kBool,
	"oci-layout":        kString,
	"tarball":           kString,
}

// ConfigError is a configuration value beamctl cannot use.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// Invalid marks the error as a problem with the user's input.
func (e *ConfigError) Invalid() bool { return true }

func configErr(format string, a ...any) error { return &ConfigError{fmt.Sprintf(format, a...)} }

// loadConfig builds the settings for one command: flags, then BEAMCTL_*
// variables, then config files, then flag defaults. explicit, if set,
// replaces the config file search; otherwise the user config directory's
// file is read, then the pipeline directory's file over it.
func loadConfig(flags *pflag.FlagSet, explicit, pipelineDir string) (*viper.Viper, []string, error) {
	v := viper.New()
	var files []string
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return nil, nil, configErr("config file %s cannot be read: %v: check the --config path", explicit, errors.Unwrap(err))
		}
		files = append(files, explicit)
	} else {
		if dir, err := os.UserConfigDir(); err == nil {
			files = appendIfExists(files, filepath.Join(dir, "beamctl", ConfigFile))
		}
		if pipelineDir != "" {
			files = appendIfExists(files, filepath.Join(pipelineDir, ConfigFile))
		}
	}
	for _, f := range files {
		m, err := readConfigFile(f)
		if err != nil {
			return nil, nil, err
		}
		if err := v.MergeConfigMap(m); err != nil {
			return nil, nil, configErr("%s: %v", f, err)
		}
	}
	for key, k := range settings {
		env := "BEAMCTL_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
		if val, ok := os.LookupEnv(env); ok {
			if err := checkScalar(k, val); err != nil {
				return nil, nil, configErr("%s=%q is not %s: fix or unset %s", env, val, k, env)
			}
		}
		_ = v.BindEnv(key, env)
	}
	var bindErr error
	flags.VisitAll(func(f *pflag.Flag) {
		if _, ok := settings[f.Name]; ok && bindErr == nil {
			bindErr = v.BindPFlag(f.Name, f)
		}
	})
	return v, files, bindErr
}

func appendIfExists(files []string, p string) []string {
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return append(files, p)
	}
	return files
}

// readConfigFile parses a beamctl.yaml, checking every key and value so a
// typo is reported with its line instead of being silently ignored.
func readConfigFile(path string) (map[string]any, error) {
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
	out := map[string]any{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, configErr("%s:%d: expected key: value settings at the top level", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		k, ok := settings[kn.Value]
		if !ok {
			hint := ""
			if s := nearestKey(kn.Value); s != "" {
				hint = fmt.Sprintf(": did you mean %q?", s)
			} else {
				hint = ": remove it"
			}
			return nil, configErr("%s:%d: unknown key %q%s", path, kn.Line, kn.Value, hint)
		}
		val, err := decodeValue(k, vn)
		if err != nil {
			return nil, configErr("%s:%d: key %q must be %s, not %s", path, vn.Line, kn.Value, k, err)
		}
		out[kn.Value] = val
	}
	return out, nil
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

func nearestKey(s string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	if best := suggest.Nearest(s, keys, 1, nil); len(best) == 1 && suggest.Distance(s, best[0]) <= 2 {
		return best[0]
	}
	return ""
}

func parseDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }

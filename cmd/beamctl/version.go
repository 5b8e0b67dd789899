package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core"
	"github.com/spf13/cobra"
)

// version, commit and date are set at release time with -ldflags
// "-X main.version=…"; otherwise they come from the build's VCS info.
var version, commit, date = "dev", "", ""

type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	// Modified is true for a build from a work tree with uncommitted
	// changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Beam     string `json:"beam_sdk"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of beamctl, Go and the Beam SDK it is built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			info := currentVersion()
			if a.json {
				return a.printJSON(info)
			}
			fmt.Fprintf(a.stdout, "beamctl %s\n", info.Version)
			if info.Commit != "" {
				dirty := ""
				if info.Modified {
					dirty = " (modified)"
				}
				fmt.Fprintf(a.stdout, "commit %s%s %s\n", info.Commit, dirty, info.Date)
			}
			fmt.Fprintf(a.stdout, "go %s %s/%s\nbeam sdk %s\n", info.Go, info.OS, info.Arch, info.Beam)
			return nil
		},
	}
}

// currentVersion is this beamctl's version: the release's, else the build's
// module version and VCS stamp.
func currentVersion() versionInfo {
	info := versionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Beam: "v" + core.SdkVersion, OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = cmp.Or(info.Commit, s.Value)
			case "vcs.time":
				info.Date = cmp.Or(info.Date, s.Value)
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	return info
}

// builderID names this beamctl in provenance: its source and version.
func builderID() string {
	info := currentVersion()
	id := "https://github.com/beamctl/beamctl@" + info.Version
	if info.Version == "dev" && info.Commit != "" {
		id += "+" + info.Commit
	}
	return id
}

package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core"
	"github.com/spf13/cobra"
)

// version is set at release time with -ldflags "-X main.version=…".
var version = "dev"

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	Beam    string `json:"beamSDK"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
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
			info := versionInfo{Version: version, Go: runtime.Version(), Beam: "v" + core.SdkVersion, OS: runtime.GOOS, Arch: runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					info.Version = bi.Main.Version
				}
			}
			if a.json {
				return a.printJSON(info)
			}
			fmt.Fprintf(a.stdout, "beamctl %s\ngo %s %s/%s\nbeam sdk %s\n", info.Version, info.Go, info.OS, info.Arch, info.Beam)
			return nil
		},
	}
}

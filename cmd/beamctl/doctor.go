package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/doctor"
	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/loopback"
)

func newDoctorCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor [PKG] [--target OS/ARCH...] [--endpoint HOST:PORT] [--image REPO [--verify-key FILE]]",
		Short: "Check the toolchain, the pipeline, the targets, the job server and the registry before you need them",
		Long: `Check, up front, what a build, a run or a push will need, one line per
check — ok, warn or fail, with the fix: the Go toolchain and the module's go
version, the pipeline (a Beam main package; its Beam SDK against beamctl's
embedded runner), each --target (native, qemu-user, or not runnable here;
with --cgo, its C compiler),
the cache directory and free disk, the --endpoint (a Beam job server, not
for instance Flink's REST port), the --image registry (credentials and push
access, without pushing), Delve with --debug, and the embedded runner.

Exit codes: 0 when nothing fails (warnings do not), 1 otherwise.`,
		Example: `  beamctl doctor ./pipeline --target linux/arm64
  beamctl doctor --endpoint flink-jobserver:8099 --image registry.example.com/team/wc --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg := ""
			if len(args) == 1 {
				pkg = args[0]
			}
			dir := ""
			if pkg != "" {
				dir = pipelineDir(cmd.Context(), pkg)
			}
			if err := a.setup(cmd, dir); err != nil {
				return err
			}
			dial, err := a.dialOptions()
			if err != nil {
				return err
			}
			o := doctor.Options{
				Package:          pkg,
				Endpoint:         a.v.GetString("endpoint"),
				Dial:             dial,
				Image:            a.v.GetString("image"),
				InsecureRegistry: a.v.GetBool("insecure-registry"),
				CacheDir:         a.v.GetString("cache-dir"),
				VerifyKey:        a.v.GetString("verify-key"),
				SignKey:          a.v.GetString("sign-key"),
				SignPassword:     []byte(signPassword()),
			}
			if debug, _ := cmd.Flags().GetBool("debug"); debug {
				dlv, _ := cmd.Flags().GetString("dlv")
				o.Extra = append(o.Extra, func(ctx context.Context) check.Result { return loopback.CheckDelve(ctx, dlv) })
			}
			if a.changed(cmd.Flags(), "target") || pkg != "" {
				o.Targets = a.v.GetStringSlice("target")
			}
			if a.v.GetString("cgo") != "off" {
				tc, err := build.FindToolchain(cmd.Context(), nil)
				if err != nil {
					return err
				}
				if o.CGO, o.CC, err = a.cgoOptions(cmd.Flags(), pkg, tc.Platforms); err != nil {
					return err
				}
			}
			defer a.quietPrism()()
			results := doctor.Run(cmd.Context(), o)
			words := wording(cmd)
			for i := range results {
				results[i].Detail = problem.Sub(results[i].Detail, words)
				results[i].Fix = problem.Sub(results[i].Fix, words)
			}
			if a.json {
				if err := a.printJSON(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					line := fmt.Sprintf("%-4s %s: %s", r.Status, r.Check, r.Detail)
					if r.Status != check.OK && r.Fix != "" {
						line += " — " + r.Fix
					}
					fmt.Fprintln(a.stdout, strings.TrimSpace(line))
				}
			}
			if doctor.Failed(results) {
				return &codeError{code: exitFailure, msg: "some checks failed"}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSlice("target", []string{"linux/amd64"}, "worker platforms to check, OS/ARCH[/VARIANT] or host (default with PKG: linux/amd64)")
	f.String("cache-dir", "", "beamctl's cache directory to check (default: the user cache directory)")
	addDialFlags(f)
	f.String("image", "", "worker image repository to check push access to, REPO[:TAG]")
	f.Bool("insecure-registry", false, "allow plain HTTP to registries beyond this machine")
	f.String("verify-key", "", "public key to check that it loads (cosign.pub; a file or env://VAR); with --image, also where the registry keeps signatures")
	f.String("sign-key", "", "signing key to check that it loads with BEAMCTL_SIGN_PASSWORD or COSIGN_PASSWORD")
	f.Bool("debug", false, "check Delve, for run --debug")
	f.String("dlv", "", "path of the dlv to check (default: dlv on PATH)")
	declareSettings(f, fields{"target": {"Target"}, "cache-dir": {"CacheDir"}, "image": {"Image"},
		"insecure-registry": {"InsecureRegistry"}, "debug": {"Debug"}, "dlv": {"Dlv"},
		"verify-key": {"VerifyKey"}, "sign-key": {"SignKey"}})
	addCGOFlags(f)
	return cmd
}

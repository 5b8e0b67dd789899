package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/launch"
)

const stageLong = `Make a worker image of a Beam Go pipeline and push it: per --target, an
image whose entrypoint is beamctl's boot (Beam's container contract) and
which holds the pipeline's worker, so a runner's DOCKER environment, a
worker-pool sidecar (boot --worker_pool) or Dataflow starts the worker with
nothing staged. Several targets make one multi-platform image index.

PKG is built as by 'beamctl build --boot', without the launcher, which an
image does not hold (build with 'beamctl build --boot' and stage the DIST to
also submit from it); a DIST directory (one with a manifest.json, from
'beamctl build --boot') is used as it is, without a Go toolchain. The image is reproducible: the same worker and flags give the same
digest on any machine (times from SOURCE_DATE_EPOCH, else 1970). Layers
are cached by content and the registry is sent only what it lacks; the tag
is written last.

Prints the image by digest, REPO@sha256:..., on stdout, and records it in the
output directory's manifest, with an SPDX SBOM beside each worker.
With --emit sidecar, a Kubernetes container spec follows (YAML, after a
'---' line; in --output json the field sidecar): the image by digest as a
worker-pool sidecar for a runner's pod, such as a Flink task manager, whose
jobs use --environment external --environment-config localhost:50000.
Credentials come from the docker config and its credential helpers; plain
HTTP is used only for registries on this machine unless --insecure-registry.`

// stageOnly are the settings of stage alone.
var stageOnly = fields{"oci-layout": {"OCILayout"}, "tarball": {"Tarball"}, "emit": nil}

// addImageFlags registers the flags that say how to make a worker image.
func addImageFlags(f *pflag.FlagSet) {
	f.String("image", "", "worker image REPO[:TAG] to push (for run and submit also REPO@sha256:... of an image staged before)")
	f.String("base", "", "base image for the worker layers (its matching platform); default beamctl's minimal base: users, CA certificates, /tmp")
	f.StringArray("label", nil, "image label KEY=VALUE, repeatable")
	f.Bool("insecure-registry", false, "allow plain HTTP to registries beyond this machine")
	declareSettings(f, fields{"image": {"Image"}, "base": {"Base"}, "label": nil, "insecure-registry": {"InsecureRegistry"}})
	addSignFlags(f)
}

// imageSpec reads the image flags.
func (a *app) imageSpec() (launch.ImageSpec, error) {
	s := launch.ImageSpec{
		Ref:      a.v.GetString("image"),
		Base:     a.v.GetString("base"),
		Insecure: a.v.GetBool("insecure-registry"),
		CacheDir: a.v.GetString("cache-dir"),
	}
	for _, kv := range a.v.GetStringSlice("label") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return s, badValue("label", "--label %q is not KEY=VALUE: give e.g. --label team=data", kv)
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	return s, nil
}

// stageOutput is what stage --output json prints.
type stageOutput struct {
	*launch.Staged
	// Sidecar is the container spec --emit sidecar asks for.
	Sidecar string `json:"sidecar,omitempty"`
}

// sidecarNote heads the sidecar spec with how a job uses it, in flags.
func sidecarNote(image string) string {
	return fmt.Sprintf(`# Worker-pool sidecar for the runner's pod (e.g. a Flink task manager).
# Submit jobs to the pod's runner with the pool as their environment:
#   beamctl submit DIST --endpoint JOB_SERVER --image %s \
#     --environment external --environment-config localhost:%d
`, image, launch.SidecarPort)
}

// isDist reports whether arg is an output directory of beamctl build.
func isDist(arg string) bool {
	_, err := os.Stat(filepath.Join(arg, build.ManifestFile))
	return err == nil
}

func newStageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stage [PKG|DIST] --image REPO[:TAG] [flags]",
		Short: "Push the pipeline's worker as a container image (multi-platform, reproducible)",
		Long:  stageLong,
		Example: `  beamctl stage ./pipeline --image registry.example.com/team/wordcount:v1 --target linux/amd64,linux/arm64
  beamctl stage dist --image localhost:5000/wordcount --output json
  beamctl stage ./pipeline --image wordcount:v1 --oci-layout ./image
  beamctl stage dist --image registry.example.com/team/wordcount:v1 --emit sidecar`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := "."
			if len(args) == 1 {
				arg = args[0]
			}
			dist := isDist(arg) && len(args) == 1
			if dist {
				if err := a.setup(cmd, ""); err != nil {
					return err
				}
			} else if err := a.setup(cmd, pipelineDir(cmd.Context(), arg)); err != nil {
				return err
			}
			img, err := a.imageSpec()
			if err != nil {
				return err
			}
			if img.Ref == "" {
				return usagef("stage needs --image REPO[:TAG]: the repository to push the worker image to")
			}
			img.OCILayout, img.Tarball = a.v.GetString("oci-layout"), a.v.GetString("tarball")
			if err := a.signing(cmd.Context(), &img); err != nil {
				return err
			}
			sidecar := false
			for _, e := range a.v.GetStringSlice("emit") {
				if e != "sidecar" {
					return badValue("emit", "--emit %q is not known: give --emit sidecar", e)
				}
				sidecar = true
			}
			s := launch.StageSpec{Image: img}
			if dist {
				s.Dist = arg
				if a.changed(cmd.Flags(), "target") {
					if s.Targets, err = distTargets(arg, a.v.GetStringSlice("target")); err != nil {
						return err
					}
				}
			} else {
				o, err := a.buildOptions(cmd.Context(), cmd.Flags(), arg)
				if err != nil {
					return err
				}
				s.Build = &o
			}
			var bp *buildProgress
			obs := launch.Observer{}
			if s.Build != nil {
				bp = a.newBuildProgress()
				obs.Build = bp.event
			}
			res, err := launch.Stage(cmd.Context(), s, launch.Deps{Logger: a.log, Digests: a.digests}, obs)
			if bp != nil {
				bp.wait()
			}
			if err != nil {
				return err
			}
			var spec string
			if sidecar {
				y, err := launch.SidecarYAML(res.Image)
				if err != nil {
					return err
				}
				spec = sidecarNote(res.Image) + y
			}
			if a.json {
				return a.printJSON(stageOutput{res, spec})
			}
			for _, p := range res.Platforms {
				a.log.Info("image", "platform", p.Platform, "digest", p.Digest, "size", p.Size)
			}
			a.log.Info("pushed", "bytes_uploaded", res.BytesUploaded, "blobs_uploaded", res.BlobsUploaded)
			if res.Signatures > 0 {
				a.log.Info("signed", "bundles", res.Signatures)
			}
			fmt.Fprintln(a.stdout, res.Image)
			if spec != "" {
				fmt.Fprint(a.stdout, "---\n"+spec)
			}
			return nil
		},
	}
	addBuildFlags(cmd.Flags())
	addImageFlags(cmd.Flags())
	cmd.Flags().String("oci-layout", "", "write the image into this OCI layout directory instead of pushing it")
	cmd.Flags().String("tarball", "", "write the image (one --target) to this docker-load tarball instead of pushing it")
	cmd.Flags().StringSlice("emit", nil, "also print, after the image: sidecar (a Kubernetes container spec, YAML, that runs the image as a worker-pool sidecar)")
	declareSettings(cmd.Flags(), stageOnly)
	return cmd
}

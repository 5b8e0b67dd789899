package launch

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/dataflow"
	"github.com/beamctl/beamctl/internal/problem"
)

// Dataflow says how a launch runs on Google Cloud Dataflow: the launcher
// runs with the Beam Go SDK's own Dataflow runner, given the worker
// beamctl built and, with an Image, the image by digest.
type Dataflow struct {
	Project, Region, StagingLocation, TemplateLocation string
	// MachineType is the workers' machine type; the pipeline's arguments
	// may give it instead (the SDK's worker_machine_type or machine_type).
	// Its architecture must be the worker's.
	MachineType string
	// DryRun prints the job the SDK would submit, and submits nothing.
	DryRun bool
	// Wait follows the job to its end; by default the launch returns once
	// Dataflow has the job, which runs for as long as it needs without
	// this machine.
	Wait bool
}

// DataflowJob is what a Dataflow launch submitted, or would have.
type DataflowJob struct {
	*dataflow.Job
	// Worker is the worker binary the job runs, its sha256 and platform.
	Worker       string `json:"worker"`
	WorkerSHA256 string `json:"worker_sha256"`
	Platform     string `json:"platform"`
	MachineType  string `json:"machine_type,omitempty"`
	Image        string `json:"image,omitempty"`
	DryRun       bool   `json:"dry_run,omitempty"`
	// State is the job's, as far as beamctl followed it: RUNNING once
	// submitted; with Wait how it ended (DONE, CANCELLED, DRAINED, UPDATED,
	// FAILED), or UNKNOWN when the launcher failed after submitting it;
	// empty for a dry run or a template.
	State string `json:"state,omitempty"`
}

// options are the dataflow package's options for this spec.
func (s *Spec) dataflowOptions() dataflow.Options {
	df := s.Dataflow
	return dataflow.Options{
		Project: df.Project, Region: df.Region, StagingLocation: df.StagingLocation,
		TemplateLocation: df.TemplateLocation, MachineType: df.MachineType,
		DryRun: df.DryRun, Wait: df.Wait, JobName: s.JobName, Args: s.Args, Dir: s.Dir,
		Output: s.LauncherOutput,
	}
}

// validateDataflow checks a Dataflow spec, and the worker's platform
// against the machine type when the spec names it.
func (s *Spec) validateDataflow() error {
	switch {
	case s.Endpoint != "":
		return problem.Usagef("drop one of them", "{Runner} dataflow and {Endpoint} both say where the job runs").About("Runner")
	case s.Environment != "" && s.Environment != Docker:
		return problem.Usagef("drop {Environment}: Dataflow starts the worker image itself", "{Runner} dataflow runs workers in containers, not {Environment} %s", s.Environment).About("Runner")
	case s.EnvironmentConfig != "":
		return problem.Usagef("give the worker image with {Image}", "{EnvironmentConfig} has no meaning for {Runner} dataflow").About("EnvironmentConfig")
	case s.Debug != nil:
		return problem.Usagef("debug on the embedded runner", "{Debug} runs workers on this machine, but {Runner} dataflow runs them on Google Cloud").About("Debug")
	case s.Image != nil && s.Image.Ref == "":
		return problem.Usagef("give REPO[:TAG] or REPO@sha256:...", "{Image} is empty").About("Image")
	case s.Image != nil && s.Dataflow.DryRun && !strings.Contains(s.Image.Ref, "@sha256:"):
		// Pushing is not a dry run, and neither is asking a registry.
		return problem.Usagef("give the image by digest, REPO@sha256:..., as beamctl stage printed it",
			"{DryRun} pushes no image and reaches no registry, but {Image} %s is a tag", s.Image.Ref).About("DryRun")
	}
	o := s.dataflowOptions()
	// The image's digest is not known yet; a placeholder passes the check.
	if err := o.Validate(); err != nil {
		return err
	}
	var target build.Platform
	switch {
	case s.Build != nil && len(s.Build.Targets) > 0:
		target = s.Build.Targets[0]
	case s.Target != (build.Platform{}):
		target = s.Target
	default:
		return nil
	}
	return checkMachine(target, o.WorkerMachineType())
}

// checkMachine: Dataflow runs Linux workers on the architecture of their
// machine type, and the SDK is not there to build another worker.
func checkMachine(p build.Platform, machineType string) error {
	arch := dataflow.MachineArch(machineType)
	want := build.Platform{OS: "linux", Arch: arch}
	switch {
	case p.OS == want.OS && p.Arch == want.Arch:
		return nil
	case machineType == "" && p.Arch == "arm64":
		return problem.Usagef("give an Arm {MachineType} such as t2a-standard-4 or c4a-standard-4, or build for {Target} linux/amd64",
			"{Target} %s needs an Arm machine type, but none is given and Dataflow's default is x86 (linux/amd64)", p).About("Target")
	case machineType == "":
		return problem.Usagef("build for {Target} linux/amd64, or give an Arm {MachineType} for linux/arm64",
			"{Target} %s does not run on Dataflow's default machine type (linux/amd64)", p).About("Target")
	}
	return problem.Usagef(fmt.Sprintf("build for {Target} %s, or choose a machine type for %s", want, p),
		"{Target} %s does not run on Dataflow machine type %s, whose workers are %s", p, machineType, want).About("Target")
}

// runDataflow builds (or takes Dist), stages or checks the image, and runs
// the launcher with the SDK's Dataflow runner.
func (s *Spec) runDataflow(ctx context.Context, d Deps, obs Observer) (*Result, error) {
	bins, err := s.binaries(ctx, d, obs)
	if err != nil {
		return nil, err
	}
	var w build.Binary
	for _, b := range bins.manifest.Workers() {
		if filepath.Join(bins.dir, b.File) == bins.worker {
			w = b
		}
	}
	o := s.dataflowOptions()
	if err := checkMachine(w.Platform, o.WorkerMachineType()); err != nil {
		return nil, err
	}
	res := &Result{Manifest: bins.manifest, Outcome: Detached}
	switch {
	case s.Image != nil && o.DryRun:
		// Offline: the image's worker is checked against this build when
		// the job is submitted for real.
		o.Image = s.Image.Ref
		res.Image = o.Image
	case s.Image != nil:
		if o.Image, _, err = s.workerImage(ctx, d, bins); err != nil {
			return nil, err
		}
		res.Image = o.Image
	}
	if o.Launcher, err = filepath.Abs(bins.launcher); err != nil {
		return nil, err
	}
	if o.Worker, err = filepath.Abs(bins.worker); err != nil {
		return nil, err
	}
	o.Logger = d.Logger
	o.Stop = s.Waits.cancel()
	job, err := d.Dataflow(ctx, o)
	if err != nil && (job == nil || job.ID == "") {
		return nil, err
	}
	res.Dataflow = &DataflowJob{Job: job, Worker: o.Worker, WorkerSHA256: w.SHA256, Platform: w.Platform.String(),
		MachineType: o.WorkerMachineType(), Image: o.Image, DryRun: o.DryRun}
	// A submitted job is reported however the wait for it ended: it failed,
	// or it runs on after an interrupt.
	switch {
	case err != nil && ctx.Err() != nil:
		res.Outcome, res.Err, res.Dataflow.State = Interrupted, err, "RUNNING"
	case job.End == "FAILED":
		res.Outcome, res.Err, res.Dataflow.State = Failed, err, "FAILED"
	case err != nil:
		// The launcher failed after submitting: the job may run on.
		res.Outcome, res.Err, res.Dataflow.State = Failed, err, "UNKNOWN"
	case o.DryRun || o.TemplateLocation != "":
		res.Outcome = Done
	case o.Wait && job.End == "CANCELLED":
		res.Outcome, res.Dataflow.State = Cancelled, job.End
	case o.Wait:
		// The SDK waits for DONE, DRAINED or UPDATED alike.
		res.Outcome, res.Dataflow.State = Done, cmp.Or(job.End, "DONE")
	default:
		res.Dataflow.State = "RUNNING"
	}
	return res, nil
}

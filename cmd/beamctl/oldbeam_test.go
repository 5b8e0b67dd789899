package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/check"
)

// TestOlderBeamSDK keeps beamctl working for a pipeline on the oldest Beam
// Go SDK doctor passes (testdata/beam260, a module of its own): it runs on
// the embedded runner with the right counts, its worker image is built
// with beamctl-boot compiled in that module's older graph, and doctor
// passes its SDK.
func TestOlderBeamSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles another version of the Beam SDK")
	}
	out := filepath.Join(t.TempDir(), "counts.txt")
	r := beamctl(t, "run", "testdata/beam260", "--out", filepath.Join(t.TempDir(), "dist"),
		"--", "--input="+abs(t, wordcountInput), "--output="+out)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	if got, want := readSorted(t, out), countWords(t, wordcountInput); !slices.Equal(got, want) {
		t.Errorf("counts differ:\n got %v\nwant %v", got, want)
	}
	reg := registryHost(t, nil)
	staged := stageImage(t, "testdata/beam260", "--image", reg+"/beam260:v1", "--target", "host", "--out", filepath.Join(t.TempDir(), "dist"))
	if len(staged.Platforms) != 1 || !strings.HasPrefix(staged.Image, reg+"/beam260@sha256:") {
		t.Errorf("stage: %+v", staged)
	}
	rs, _ := doctorJSON(t, "testdata/beam260")
	if r := rs["beam sdk"]; r.Status != check.OK || !strings.HasPrefix(r.Detail, build.OldestTestedBeam) {
		t.Errorf("doctor's beam sdk check: %+v", r)
	}

	// This SDK logs through the standard library's log, where the job's
	// JSON spans lines of its own: a Dataflow dry run still finds the job.
	connections := offline(t)
	r = beamctl(t, "run", "testdata/beam260", "--out", filepath.Join(t.TempDir(), "dist"), "--runner", "dataflow",
		"--project", "beam-p1", "--region", "europe-west4", "--staging-location", "gs://bucket/staging", "--dry-run",
		"--output", "json", "--", "--input=gs://b/in", "--output=gs://b/out")
	if r.code != 0 {
		t.Fatalf("dataflow dry run: exit %d\n%s", r.code, r.stderr)
	}
	var j dataflowJSON
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatalf("dataflow dry run printed %q: %v", r.stdout, err)
	}
	named := j.Job.Environment.SDKPipelineOptions.GoOptions.Options["worker_binary"]
	if _, sum := workerOf(t, named); j.Job.ProjectID != "beam-p1" || named != j.Worker || sum != j.WorkerSHA256 {
		t.Errorf("dry run: project %q, worker %q sha256 %s; beamctl says %q sha256 %s", j.Job.ProjectID, named, sum, j.Worker, j.WorkerSHA256)
	}
	if n := connections(); n != 0 {
		t.Errorf("the dry run made %d connections to Google's stand-ins", n)
	}
}

package launch

import (
	"cmp"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beamctl/beamctl/attest"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/internal/sbom"
	"github.com/beamctl/beamctl/stage"
	"github.com/beamctl/beamctl/stage/image"
	"github.com/beamctl/beamctl/wrap"
)

// ImageSpec is a worker image to make, or one made before.
type ImageSpec struct {
	// Ref is REPO[:TAG] to push to, or REPO@sha256:... of an image made
	// before, which is checked against the build instead.
	Ref string
	// Base, Labels, Insecure, OCILayout and Tarball: see image.Options.
	Base               string
	Labels             map[string]string
	Insecure           bool
	OCILayout, Tarball string
	// Created is the images' creation time; zero takes SOURCE_DATE_EPOCH
	// from the environment, else the Unix epoch.
	Created time.Time
	// CacheDir keeps compressed layers and the Delve of debug images;
	// default the build's cache directory, else the user cache's.
	CacheDir string
	// Sign, if set, signs what is pushed: every platform image and the
	// index, with each platform's provenance and SBOM.
	Sign *attest.Signer
	// Verify, if set, is what the image a job runs must be signed with,
	// checked before anything is submitted.
	Verify *attest.Policy
}

// StageSpec is one staging of worker images.
type StageSpec struct {
	// Build builds the pipeline (with beamctl-boot for every target); or
	// Dist is the output of an earlier `build` with boots, used as it is.
	Build *build.Options
	Dist  string
	// Targets picks Dist's workers; none takes them all.
	Targets []build.Platform
	Image   ImageSpec
}

// Staged is what Stage made.
type Staged struct {
	*image.Result
	// Manifest is the build's, now recording the image.
	Manifest *build.Manifest `json:"-"`
	// SBOM are the SPDX documents written beside the workers.
	SBOM []string `json:"sbom"`
}

// Stage builds the pipeline (or takes Dist), makes a worker image per
// target and pushes or writes it, and records it in the output
// directory's manifest.
func Stage(ctx context.Context, s StageSpec, d Deps, obs Observer) (*Staged, error) {
	d.defaults()
	if (s.Build == nil) == (s.Dist == "") {
		return nil, problem.Usagef("set exactly one of them", "staging needs either {Build} or {Dist}")
	}
	m, dir, err := s.binaries(ctx, d, obs)
	if err != nil {
		return nil, err
	}
	o, err := s.Image.options(m, dir, s.Targets, d)
	if err != nil {
		return nil, err
	}
	if m.Flags.Debug {
		if err := s.addDebugger(ctx, &o, d); err != nil {
			return nil, err
		}
	}
	// The SBOMs describe the workers whatever becomes of the push.
	var sboms []string
	for i, p := range o.Platforms {
		f := p.Worker + ".spdx.json"
		// The worker's digest is the manifest's, checked when the image is
		// made: the SBOM need not hash the file again.
		bi, err := buildinfo.ReadFile(p.Worker)
		if err != nil {
			return nil, fmt.Errorf("reading build info of %s: %w", p.Worker, err)
		}
		doc, err := sbom.FromBuildInfo(bi, p.WorkerSHA256, sbom.Options{Created: o.Created, Name: filepath.Base(p.Worker)})
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(f, doc, 0o644); err != nil {
			return nil, err
		}
		sboms = append(sboms, f)
		o.Platforms[i].SBOM = doc
	}
	res, err := image.Push(ctx, o)
	if err != nil {
		return nil, err
	}
	st := &Staged{Result: res, Manifest: m, SBOM: sboms}
	m.Image = &build.ImageRecord{Image: res.Image, Digest: res.Digest}
	for _, p := range res.Platforms {
		m.Image.Platforms = append(m.Image.Platforms, build.ImagePlatform{Platform: p.Platform, Digest: p.Digest})
	}
	if err := m.Write(dir); err != nil {
		return nil, err
	}
	return st, nil
}

// addDebugger puts Delve, built for each platform, into the images of a
// debug build: boot --worker_pool --debug then runs workers under it
// where the runner is.
func (s *StageSpec) addDebugger(ctx context.Context, o *image.Options, d Deps) error {
	var tc *build.Toolchain
	if s.Build != nil {
		tc = s.Build.Toolchain
	}
	if tc == nil {
		var err error
		if tc, err = build.FindToolchain(ctx, nil); err != nil {
			return fmt.Errorf("a debug image carries Delve built for each target, which needs Go: %w", err)
		}
	}
	cacheDir := s.Image.CacheDir
	if cacheDir == "" && s.Build != nil {
		cacheDir = s.Build.CacheDir
	}
	if cacheDir == "" {
		root, err := build.CacheRoot()
		if err != nil {
			return err
		}
		cacheDir = root
	}
	for i, p := range o.Platforms {
		if p.Platform.Arch == "arm" || p.Platform.Arch == "386" {
			return problem.Usagef("debug a linux/amd64 or linux/arm64 worker", "Delve cannot debug %s workers", p.Platform)
		}
		dlv, err := build.Tool(ctx, tc, wrap.DelvePackage, wrap.DelveVersion, p.Platform, cacheDir)
		if err != nil {
			return err
		}
		d.Logger.Debug("Delve for the image", "platform", p.Platform, "path", dlv)
		o.Platforms[i].Debugger = dlv
	}
	return nil
}

// binaries builds with boots, or reads Dist.
func (s *StageSpec) binaries(ctx context.Context, d Deps, obs Observer) (*build.Manifest, string, error) {
	if s.Build == nil {
		m, err := build.ReadManifest(s.Dist)
		return m, s.Dist, err
	}
	o := *s.Build
	o.Boot = true
	o.NoLauncher = true
	o.Local = false
	o.OnEvent = obs.Build
	o.Digests = d.Digests
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	m, err := d.Build(ctx, o)
	if err != nil {
		return nil, "", err
	}
	dir, err := o.OutPath()
	return m, dir, err
}

// options are the image options for m's workers of targets (all when
// none), each with its boot.
func (s ImageSpec) options(m *build.Manifest, dir string, targets []build.Platform, d Deps) (image.Options, error) {
	o := image.Options{
		Ref: s.Ref, Base: s.Base, Labels: s.Labels, Insecure: s.Insecure,
		OCILayout: s.OCILayout, Tarball: s.Tarball, Created: s.Created,
		CacheDir: s.CacheDir, Digests: d.Digests, Logger: d.Logger,
	}

	if o.Created.IsZero() {
		if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return o, problem.Usagef("set it to seconds since 1970, or unset it", "SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
			}
			o.Created = time.Unix(sec, 0).UTC()
		} else {
			o.Created = time.Unix(0, 0).UTC()
		}
	}
	var have []build.Platform
	for _, w := range m.Workers() {
		have = append(have, w.Platform)
	}
	if len(targets) == 0 {
		targets = have
	}
	for _, t := range targets {
		i := slices.Index(have, t)
		if i < 0 {
			return o, problem.Usagef(fmt.Sprintf("build one for {Target} %s into %s", t, dir),
				"%s has no worker for %s: it has %s", dir, t, PlatformList(have))
		}
		w := m.Workers()[i]
		b, ok := m.Boot(t)
		if !ok {
			return o, problem.Usagef("build the pipeline with {Boot}, which adds the image entrypoint for each target",
				"%s has no beamctl-boot for %s", dir, t)
		}
		o.Platforms = append(o.Platforms, image.Platform{
			Platform: t,
			Worker:   filepath.Join(dir, w.File), WorkerSHA256: w.SHA256,
			Boot: filepath.Join(dir, b.File), BootSHA256: b.SHA256,
		})
	}
	if s.Sign != nil {
		o.Sign = signWith(s.Sign, m, o)
	}
	return o, nil
}

// workerImage stages the image of the worker the job runs, or checks an
// image given by digest against it, and returns the image by digest and
// the worker's sha256.
func (s *Spec) workerImage(ctx context.Context, d Deps, bins *binaries) (ref, sha string, err error) {
	var w build.Binary
	for _, b := range bins.manifest.Workers() {
		if filepath.Join(bins.dir, b.File) == bins.worker {
			w = b
		}
	}
	if w.File == "" {
		return "", "", fmt.Errorf("the worker %s is not in its manifest", bins.worker)
	}
	if strings.Contains(s.Image.Ref, "@") {
		// Signed facts come before the labels anyone can write.
		if s.Image.Verify != nil {
			if err := checkVerified(ctx, s.Image.Ref, w, s.Image.Verify, image.Options{Ref: s.Image.Ref, Insecure: s.Image.Insecure, Logger: d.Logger}); err != nil {
				return "", "", err
			}
		}
		res, err := image.Inspect(ctx, s.Image.Ref, image.Options{Insecure: s.Image.Insecure, Logger: d.Logger})
		if err != nil {
			return "", "", err
		}
		i := slices.IndexFunc(res.Platforms, func(p image.PlatformResult) bool { return p.Platform == w.Platform.String() })
		switch {
		case i < 0:
			var have []string
			for _, p := range res.Platforms {
				have = append(have, p.Platform)
			}
			return "", "", problem.Usagef("stage an image for "+w.Platform.String()+" with beamctl stage, or choose another {Target}",
				"image %s has no %s image (it has %s)", s.Image.Ref, w.Platform, strings.Join(have, ", "))
		case res.Platforms[i].WorkerSHA256 != w.SHA256:
			return "", "", problem.Usagef("stage the image again from this build, or use the build the image was made from",
				"image %s holds worker sha256 %s, but this build's %s worker is sha256 %s", s.Image.Ref, cmp.Or(res.Platforms[i].WorkerSHA256, "(none)"), w.Platform, w.SHA256)
		}
		return res.Image, w.SHA256, nil
	}
	o, err := s.Image.options(bins.manifest, bins.dir, []build.Platform{w.Platform}, d)
	if err != nil {
		return "", "", err
	}
	res, err := image.Push(ctx, o)
	if err != nil {
		return "", "", err
	}
	d.Logger.Info("worker image staged", "image", res.Image, "bytes_uploaded", res.BytesUploaded)
	if s.Image.Verify != nil {
		if err := checkVerified(ctx, res.Image, w, s.Image.Verify, image.Options{Ref: res.Image, Insecure: s.Image.Insecure, Logger: d.Logger}); err != nil {
			return "", "", err
		}
	}
	return res.Image, w.SHA256, nil
}

// stagedBytes adds up what staging sent.
type stagedBytes struct {
	mu   sync.Mutex
	sent map[string]int64
}

func (b *stagedBytes) observe(next func(stage.Progress)) func(stage.Progress) {
	return func(p stage.Progress) {
		b.mu.Lock()
		if b.sent == nil {
			b.sent = map[string]int64{}
		}
		b.sent[p.Path] = p.Sent
		b.mu.Unlock()
		if next != nil {
			next(p)
		}
	}
}

func (b *stagedBytes) total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, v := range b.sent {
		n += v
	}
	return n
}

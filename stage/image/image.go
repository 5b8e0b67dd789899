// Package image makes worker images: per target platform, beamctl's boot
// as the entrypoint and the pipeline's worker baked in at a fixed path, on
// beamctl's own minimal base or a given one; several platforms make one
// OCI image index. Images are reproducible (fixed times, owners and order)
// and their layers are cached by content, so an unchanged worker is never
// compressed or uploaded again. Push writes them to a registry, an OCI
// layout or a tarball.
package image

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/digest"
	"github.com/beamctl/beamctl/internal/problem"
)

// Labels beamctl sets on every worker image, beside the OCI ones.
const (
	LabelWorkerSHA256 = "io.github.beamctl.worker.sha256"
	LabelBeamVersion  = "io.github.beamctl.beam.version"
	LabelPackage      = "io.github.beamctl.pipeline.package"
)

// Platform is one platform's content.
type Platform struct {
	Platform build.Platform
	// Worker and Boot are the files of the worker binary and of
	// beamctl-boot for the platform, with the sha256 each must have.
	Worker, WorkerSHA256 string
	Boot, BootSHA256     string
	// SBOM, if set, is the worker's SPDX document, attached to the image as
	// an artifact that refers to it.
	SBOM []byte
	// Debugger, if set, is Delve built for the platform, put on the image's
	// PATH for boot --worker_pool --debug.
	Debugger string
}

// Options say what image to make and where it goes.
type Options struct {
	// Ref is the image's repository, with an optional tag: REPO[:TAG].
	Ref string
	// Platforms are the image's, one per target.
	Platforms []Platform
	// Base, if set, is the image the layers go on (its matching platform
	// when it is an index); default beamctl's own minimal base.
	Base string
	// Labels are added to the image's configuration.
	Labels map[string]string
	// Created is the images' creation time; default the Unix epoch, so
	// images are reproducible (callers pass SOURCE_DATE_EPOCH).
	Created time.Time
	// Insecure allows plain HTTP to registries beyond this machine.
	Insecure bool
	// Keychain finds registry credentials; default authn.DefaultKeychain.
	Keychain authn.Keychain
	// OCILayout or Tarball, if set, is where the image is written instead
	// of a registry.
	OCILayout, Tarball string
	// CacheDir holds compressed layers; default the user cache directory.
	CacheDir string
	// Digests verifies the files; default a new cache.
	Digests *digest.Cache
	// Transport carries requests to registries; default
	// go-containerregistry's.
	Transport http.RoundTripper
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// Sign, if set, signs each platform image and then the index, once
	// their digests are known; what it returns is attached to each as a
	// referrer, before any tag is written.
	Sign func(ctx context.Context, s Subject) ([]Attachment, error)
}

// Subject is an image to sign: a platform's, with its worker and SBOM, or
// the index of them (no Platform).
type Subject struct {
	Repo, Digest, Platform   string
	WorkerFile, WorkerSHA256 string
	SBOM                     []byte
}

// Attachment is a document attached to an image as a referrer: a
// signature, an attestation.
type Attachment struct {
	MediaType   string
	Doc         []byte
	Annotations map[string]string
}

// Result is what was made and written.
type Result struct {
	// Image is the image by digest, REPO@sha256:...
	Image string `json:"image"`
	// Digest is the image's (or index's) manifest digest.
	Digest    string           `json:"digest"`
	Platforms []PlatformResult `json:"platforms"`
	// BytesUploaded and BlobsUploaded count what was sent to the registry;
	// blobs it already had are not sent.
	BytesUploaded int64 `json:"bytes_uploaded"`
	BlobsUploaded int   `json:"blobs_uploaded"`
	// Signatures counts the signatures and attestations attached.
	Signatures int `json:"signatures,omitempty"`
}

// PlatformResult is one platform's image.
type PlatformResult struct {
	Platform     string `json:"platform"`
	Digest       string `json:"digest"`
	WorkerSHA256 string `json:"worker_sha256"`
	// Size is the sum of the compressed layers and the config.
	Size int64 `json:"size"`
	// SBOM is the digest of the SBOM artifact that refers to the image.
	SBOM string `json:"sbom,omitempty"`
}

func refError(ref, reason string) error {
	return problem.Usagef("give REPO[:TAG], e.g. registry.example.com/team/pipeline:v1, in {Image}", "image reference %q %s", ref, reason)
}

// ParseTag parses REPO[:TAG] (default tag "latest").
func ParseTag(ref string, insecure bool) (name.Tag, error) {
	if ref == "" {
		return name.Tag{}, refError(ref, "is empty")
	}
	if strings.Contains(ref, "@") {
		return name.Tag{}, refError(ref, "has a digest; a digest names an image that exists, not one to push")
	}
	t, err := name.NewTag(ref, refOptions(insecure)...)
	if err != nil {
		return name.Tag{}, refError(ref, "is malformed ("+oneLine(err)+")")
	}
	return t, nil
}

// parseRef parses REPO:TAG or REPO@DIGEST; a malformed one is told with
// reason, which is given the parser's detail.
func parseRef(ref string, insecure bool) (name.Reference, string, error) {
	r, err := name.ParseReference(ref, refOptions(insecure)...)
	if err != nil {
		return nil, "is malformed (" + oneLine(err) + ")", err
	}
	return r, "", nil
}

func refOptions(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// oneLine is err's text with what the parser quoted of the reference, which
// may hold any character, escaped: a refusal is one line.
func oneLine(err error) string {
	q := strconv.Quote(err.Error())
	return q[1 : len(q)-1]
}

// made is an image made for one platform.
type made struct {
	p   Platform
	img v1.Image
}

func (o *Options) defaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Digests == nil {
		o.Digests = digest.NewCache()
	}
	if o.CacheDir == "" {
		root, err := build.CacheRoot()
		if err != nil {
			return err
		}
		o.CacheDir = root
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0).UTC()
	}
	if len(o.Platforms) == 0 {
		return errors.New("no platforms to make images for")
	}
	return nil
}

// makeImages makes each platform's image, concurrently: compressing a
// new worker layer is the longest step.
func (o *Options) makeImages(ctx context.Context, base *baseImage) ([]made, error) {
	cache := layerCache{dir: filepath.Join(o.CacheDir, "layers"), digests: o.Digests, log: o.Logger}
	out := make([]made, len(o.Platforms))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range o.Platforms {
		g.Go(func() error {
			for _, f := range []struct{ path, sum string }{{p.Worker, p.WorkerSHA256}, {p.Boot, p.BootSHA256}} {
				if err := o.verify(gctx, f.path, f.sum); err != nil {
					return err
				}
			}
			img, err := o.platformImage(gctx, cache, base, p)
			if err != nil {
				return err
			}
			out[i] = made{p: p, img: img}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

func (o *Options) verify(ctx context.Context, path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return o.Digests.VerifyOpen(ctx, path, f, want)
}

// platformImage puts the layers on the base and writes the configuration.
func (o *Options) platformImage(ctx context.Context, cache layerCache, base *baseImage, p Platform) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	system := systemEntries()
	if base != nil {
		var err error
		if img, err = base.forPlatform(ctx, p.Platform); err != nil {
			return nil, err
		}
		system = homeEntries()
	}
	if err := o.checkLibc(p, img); err != nil {
		return nil, err
	}
	var layers []mutate.Addendum
	sysLayer, err := cache.layer(ctx, system, o.Created)
	if err != nil {
		return nil, err
	}
	layers = append(layers, addendum(sysLayer, o.Created, "beamctl: users, CA certificates, /tmp"))
	files := []struct{ path, sum, at, what string }{
		{p.Boot, p.BootSHA256, BootPath, "beamctl: boot, the entrypoint"},
		{p.Worker, p.WorkerSHA256, WorkerPath, "beamctl: the pipeline's worker"},
	}
	if p.Debugger != "" {
		sum, err := o.Digests.Sum(ctx, p.Debugger)
		if err != nil {
			return nil, err
		}
		files = append(files, struct{ path, sum, at, what string }{p.Debugger, sum.SHA256, DebuggerPath, "beamctl: Delve, for debugging workers"})
	}
	for _, f := range files {
		fi, err := os.Stat(f.path)
		if err != nil {
			return nil, err
		}
		e := entry{name: cleanName(f.at), mode: 0o755, file: f.path, size: fi.Size(), sha256: f.sum}
		l, err := cache.layer(ctx, []entry{e}, o.Created)
		if err != nil {
			return nil, err
		}
		layers = append(layers, addendum(l, o.Created, f.what))
	}
	img, err = mutate.Append(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.Platform.OS, p.Platform.Arch, p.Platform.Variant
	cf.Created = v1.Time{Time: o.Created}
	cf.Author = "beamctl"
	c := &cf.Config
	c.Entrypoint = []string{BootPath}
	c.Cmd = nil
	c.User = fmt.Sprint(userID)
	c.WorkingDir = userHome
	c.Env = mergeEnv(c.Env, map[string]string{
		"USER":                    userName,
		"HOME":                    userHome,
		boot.EnvBakedWorker:       WorkerPath,
		boot.EnvBakedWorkerSHA256: p.WorkerSHA256,
	})
	c.Labels = maps.Clone(c.Labels)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	maps.Copy(c.Labels, o.sourceLabels(p))
	maps.Copy(c.Labels, o.Labels)
	return mutate.ConfigFile(img, cf)
}

func addendum(l v1.Layer, created time.Time, what string) mutate.Addendum {
	return mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: what, Comment: "beamctl"}}
}

// mergeEnv sets vars over env, keeping the base's PATH or giving one.
func mergeEnv(env []string, vars map[string]string) []string {
	out := make([]string, 0, len(env)+len(vars)+1)
	hasPath := false
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := vars[k]; ok {
			continue
		}
		hasPath = hasPath || k == "PATH"
		out = append(out, kv)
	}
	if !hasPath {
		out = append(out, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// sourceLabels are the OCI labels of where the worker came from, read
// from its own build information, and beamctl's.
func (o *Options) sourceLabels(p Platform) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.created": o.Created.UTC().Format(time.RFC3339),
		LabelWorkerSHA256:                  p.WorkerSHA256,
	}
	bi, err := buildinfo.ReadFile(p.Worker)
	if err != nil {
		return l
	}
	l[LabelPackage] = bi.Path
	if m := bi.Main.Path; m != "" && strings.Contains(strings.Split(m, "/")[0], ".") {
		l["org.opencontainers.image.source"] = "https://" + m
	}
	for _, d := range bi.Deps {
		if d.Path == build.BeamSDKModule {
			l[LabelBeamVersion] = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				l[LabelBeamVersion] = d.Replace.Version
			}
		}
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			l["org.opencontainers.image.revision"] = s.Value
		}
	}
	return l
}

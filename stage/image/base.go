package image

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/beamctl/beamctl/build"
	"github.com/beamctl/beamctl/internal/problem"
)

// baseImage is the image worker layers go on, one platform of it each.
type baseImage struct {
	ref  string
	desc *remote.Descriptor
}

func baseError(base, reason, fix string) error {
	return problem.Usagef(fix, "base image %q %s", base, reason)
}

func fetchBase(ctx context.Context, ref string, insecure bool, opts []remote.Option) (*baseImage, error) {
	r, reason, err := parseRef(ref, insecure)
	if err != nil {
		return nil, baseError(ref, reason, "give REPO[:TAG|@DIGEST] in {Base}")
	}
	desc, err := remote.Get(r, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, registryError(r.Context().RegistryStr(), "fetching base image "+ref, err)
	}
	return &baseImage{ref: ref, desc: desc}, nil
}

// forPlatform is the base's image for p: the matching entry of an index,
// or the image itself when it is of p's platform.
func (b *baseImage) forPlatform(_ context.Context, p build.Platform) (v1.Image, error) {
	if !b.desc.MediaType.IsIndex() {
		img, err := b.desc.Image()
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		have := build.Platform{OS: cf.OS, Arch: cf.Architecture, Variant: cf.Variant}
		if !samePlatform(have, p) {
			return nil, baseError(b.ref, fmt.Sprintf("is for %s only, not %s", have, p), "give a {Base} with an image for each {Target}")
		}
		return img, nil
	}
	idx, err := b.desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		mp := build.Platform{OS: m.Platform.OS, Arch: m.Platform.Architecture, Variant: m.Platform.Variant}
		if samePlatform(mp, p) {
			return idx.Image(m.Digest)
		}
		have = append(have, mp.String())
	}
	slices.Sort(have)
	return nil, baseError(b.ref, fmt.Sprintf("has no image for %s (it has %s)", p, strings.Join(slices.Compact(have), ", ")), "choose a {Base} built for every {Target}")
}

// samePlatform matches an image's platform to a target; a target without
// a variant takes an arm64 image's v8, the only one there is.
func samePlatform(have, want build.Platform) bool {
	if have.OS != want.OS || have.Arch != want.Arch {
		return false
	}
	if have.Variant == want.Variant {
		return true
	}
	return want.Arch == "arm64" && (have.Variant == "" || have.Variant == "v8") && (want.Variant == "" || want.Variant == "v8")
}

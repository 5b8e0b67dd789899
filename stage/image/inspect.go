package image

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/beamctl/beamctl/build"
)

// Inspect reads the image at ref (REPO@sha256:... or REPO:TAG) from its
// registry: its digest and, per platform, the worker it holds.
func Inspect(ctx context.Context, ref string, o Options) (*Result, error) {
	r, reason, err := parseRef(ref, o.Insecure)
	if err != nil {
		return nil, refError(ref, reason)
	}
	opts, _ := o.remoteOptions(ctx)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, registryError(r.Context().RegistryStr(), "reading image "+ref, err)
	}
	res := &Result{Digest: desc.Digest.String(), Image: r.Context().Name() + "@" + desc.Digest.String()}
	add := func(img v1.Image) error {
		d, err := img.Digest()
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		p := build.Platform{OS: cf.OS, Arch: cf.Architecture, Variant: cf.Variant}
		res.Platforms = append(res.Platforms, PlatformResult{Platform: p.String(), Digest: d.String(), WorkerSHA256: cf.Config.Labels[LabelWorkerSHA256]})
		return nil
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			if !m.MediaType.IsImage() {
				continue
			}
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, registryError(r.Context().RegistryStr(), "reading image "+ref, err)
			}
			if err := add(img); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	return res, add(img)
}

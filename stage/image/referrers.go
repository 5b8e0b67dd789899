package image

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// maxAttachment bounds what is read of one attached document: a bundle
// with an SBOM inside is tens of kilobytes, and a registry's word is not
// taken for how big a thing may be.
const maxAttachment = 32 << 20

// Attached lists the documents of mediaType that refer to the image
// digest (sha256:...) in the repository of ref: through the registry's
// referrers API, or its referrers tag where it has none.
func Attached(ctx context.Context, ref, digest, mediaType string, o Options) ([]Attachment, error) {
	r, reason, err := parseRef(ref, o.Insecure)
	if err != nil {
		return nil, refError(ref, reason)
	}
	d, err := name.NewDigest(r.Context().Name()+"@"+digest, refOptions(o.Insecure)...)
	if err != nil {
		return nil, refError(ref, oneLine(err))
	}
	opts, _ := o.remoteOptions(ctx)
	reg := r.Context().RegistryStr()
	idx, err := remote.Referrers(d, append(opts, remote.WithFilter("artifactType", mediaType))...)
	if err != nil {
		return nil, registryError(reg, "listing what refers to "+d.String(), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, registryError(reg, "listing what refers to "+d.String(), err)
	}
	var out []Attachment
	for _, m := range im.Manifests {
		if m.ArtifactType != mediaType {
			continue
		}
		img, err := remote.Image(r.Context().Digest(m.Digest.String()), opts...)
		if err != nil {
			return nil, registryError(reg, "reading "+m.Digest.String(), err)
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, registryError(reg, "reading "+m.Digest.String(), err)
		}
		if len(layers) != 1 {
			continue
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			return nil, registryError(reg, "reading "+m.Digest.String(), err)
		}
		doc, err := io.ReadAll(io.LimitReader(rc, maxAttachment+1))
		rc.Close()
		if err != nil {
			return nil, registryError(reg, "reading "+m.Digest.String(), err)
		}
		if len(doc) > maxAttachment {
			return nil, fmt.Errorf("%s attached to %s is larger than %d MiB", m.Digest, d, maxAttachment>>20)
		}
		out = append(out, Attachment{MediaType: mediaType, Doc: doc, Annotations: m.Annotations})
	}
	return out, nil
}

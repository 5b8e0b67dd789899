package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/netaddr"
	"github.com/beamctl/beamctl/internal/problem"
	"github.com/beamctl/beamctl/internal/sbom"
)

// Push makes the images and writes them: to the registry of o.Ref, or to
// o.OCILayout or o.Tarball. A registry receives every blob and manifest by
// digest first and the tag last, so an interrupted push leaves no tag
// pointing at a partial image.
func Push(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	tag, err := ParseTag(o.Ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	if o.OCILayout != "" && o.Tarball != "" {
		return nil, problem.Usagef("choose one of them", "{OCILayout} and {Tarball} both given").About("OCILayout")
	}
	if o.Tarball != "" && len(o.Platforms) > 1 {
		return nil, problem.Usagef("write several platforms to {OCILayout}, or give one {Target}", "a tarball holds one platform's image, not %d", len(o.Platforms))
	}
	if o.OCILayout != "" {
		if err := checkLayoutDir(o.OCILayout); err != nil {
			return nil, err
		}
	}
	ropts, rt := o.remoteOptions(ctx)
	var base *baseImage
	if o.Base != "" {
		if base, err = fetchBase(ctx, o.Base, o.Insecure, ropts); err != nil {
			return nil, err
		}
	}
	images, err := o.makeImages(ctx, base)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var top partial.Describable
	var idx v1.ImageIndex
	for _, m := range images {
		d, err := m.img.Digest()
		if err != nil {
			return nil, err
		}
		size, err := imageSize(m.img)
		if err != nil {
			return nil, err
		}
		res.Platforms = append(res.Platforms, PlatformResult{Platform: m.p.Platform.String(), Digest: d.String(), WorkerSHA256: m.p.WorkerSHA256, Size: size})
	}
	if len(images) == 1 {
		top = images[0].img
	} else {
		idx = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, m := range images {
			p := m.p.Platform
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: m.img, Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant},
			}})
		}
		top = idx
	}
	d, err := top.Digest()
	if err != nil {
		return nil, err
	}
	res.Digest = d.String()
	res.Image = tag.Context().Name() + "@" + res.Digest
	var sboms []v1.Image
	for i, m := range images {
		if m.p.SBOM == nil {
			continue
		}
		a, err := sbomArtifact(m.img, m.p.SBOM, o.Created)
		if err != nil {
			return nil, err
		}
		d, err := a.Digest()
		if err != nil {
			return nil, err
		}
		res.Platforms[i].SBOM = d.String()
		sboms = append(sboms, a)
	}
	arts := sboms
	if o.Sign != nil {
		if o.Tarball != "" {
			return nil, problem.Usagef("sign images pushed to a registry or written to {OCILayout}", "a tarball has no place for signatures")
		}
		signed, err := o.signatures(ctx, tag, images, idx)
		if err != nil {
			return nil, err
		}
		arts = append(arts, signed...)
		res.Signatures = len(signed)
	}
	switch {
	case o.OCILayout != "":
		err = writeLayout(o.OCILayout, tag, images, idx)
		if err == nil {
			err = appendLayout(o.OCILayout, arts)
		}
	case o.Tarball != "":
		err = writeTarball(o.Tarball, tag, images[0].img)
	default:
		err = push(ctx, tag, images, idx, arts, ropts)
		res.BytesUploaded, res.BlobsUploaded = rt.bytes.Load(), int(rt.blobs.Load())
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	o.Logger.Debug("image written", "image", res.Image, "bytes_uploaded", res.BytesUploaded, "blobs_uploaded", res.BlobsUploaded)
	return res, nil
}

// remoteOptions are the options of every registry request, with the
// transport that keeps the plain-HTTP rule and counts uploads.
func (o *Options) remoteOptions(ctx context.Context) ([]remote.Option, *countingTransport) {
	keys := o.Keychain
	if keys == nil {
		keys = authn.DefaultKeychain
	}
	rt := o.transport()
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keys),
		remote.WithTransport(rt),
		remote.WithUserAgent("beamctl"),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryPredicate(retryable),
	}, rt
}

// retryable says whether a failed registry operation is tried again from
// its start (for an upload: a new upload session). go-containerregistry's
// own rule leaves out a 500 without a registry error code in its body,
// which a registry behind a load balancer answers, and a failed upload
// chunk cannot be sent again on its own: its body was a stream.
func retryable(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return te.Temporary()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// retryBackoff is how often and after how long an operation the registry
// failed (5xx, 429, a cut connection) is tried again from its start: 24
// tries, at most about 18 s of waiting in all, beside what the registry asks
// for with Retry-After (no Cap: reaching it would end the tries). A blob's
// upload is four requests (HEAD, POST, PATCH, PUT) that must all succeed
// in one try; against a registry failing 30 % of requests one try in four
// does, which go-containerregistry's default of three tries does not
// survive.
var retryBackoff = remote.Backoff{Duration: 100 * time.Millisecond, Factor: 1.15, Jitter: 0.1, Steps: 24}

// maxRetryAfter bounds the wait a registry may ask for.
const maxRetryAfter = 30 * time.Second

// retryAfter is how long resp asks the client to wait before it tries
// again (Retry-After, in seconds or as a date), if it is a 429 or 503.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// transport is the registry transport that keeps the plain-HTTP rule and
// counts uploads.
func (o *Options) transport() *countingTransport {
	rt := &countingTransport{base: o.Transport, insecure: o.Insecure}
	if rt.base == nil {
		rt.base = remote.DefaultTransport
	}
	return rt
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

func push(ctx context.Context, tag name.Tag, images []made, idx v1.ImageIndex, arts []v1.Image, opts []remote.Option) error {
	reg := tag.Context().RegistryStr()
	var taggable remote.Taggable
	var d v1.Hash
	var err error
	if idx != nil {
		if d, err = idx.Digest(); err == nil {
			err = remote.WriteIndex(tag.Context().Digest(d.String()), idx, opts...)
		}
		taggable = idx
	} else {
		img := images[0].img
		if d, err = img.Digest(); err == nil {
			err = remote.Write(tag.Context().Digest(d.String()), img, opts...)
		}
		taggable = img
	}
	if err != nil {
		return registryError(reg, "pushing "+tag.String(), err)
	}
	// SBOMs and signatures go before the tag, so that no tag ever names
	// an image whose signatures are still to come.
	for _, a := range arts {
		ad, err := a.Digest()
		if err == nil {
			err = remote.Write(tag.Context().Digest(ad.String()), a, opts...)
		}
		if err != nil {
			return registryError(reg, "attaching an SBOM or signature to "+tag.String(), err)
		}
	}
	// A tag already on this digest is left alone: nothing to send.
	if cur, herr := remote.Head(tag, opts...); herr != nil || cur.Digest != d {
		if err := remote.Tag(tag, taggable, opts...); err != nil {
			return registryError(reg, "pushing "+tag.String(), err)
		}
	}
	return nil
}

// signatures signs each platform image and the index, as referrers of
// each.
func (o *Options) signatures(ctx context.Context, tag name.Tag, images []made, idx v1.ImageIndex) ([]v1.Image, error) {
	type subject struct {
		desc *v1.Descriptor
		s    Subject
	}
	var subjects []subject
	for _, m := range images {
		desc, err := partial.Descriptor(m.img)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, subject{desc, Subject{
			Repo: tag.Context().Name(), Digest: desc.Digest.String(), Platform: m.p.Platform.String(),
			WorkerFile: filepath.Base(m.p.Worker), WorkerSHA256: m.p.WorkerSHA256, SBOM: m.p.SBOM,
		}})
	}
	if idx != nil {
		desc, err := partial.Descriptor(idx)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, subject{desc, Subject{Repo: tag.Context().Name(), Digest: desc.Digest.String()}})
	}
	var out []v1.Image
	for _, s := range subjects {
		atts, err := o.Sign(ctx, s.s)
		if err != nil {
			return nil, err
		}
		for _, a := range atts {
			r, err := referrer(*s.desc, a.MediaType, a.Doc, o.Created, a.Annotations)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// countingTransport counts what is uploaded and keeps plain HTTP to this
// machine's registries unless insecure registries are allowed.
type countingTransport struct {
	base     http.RoundTripper
	insecure bool
	bytes    atomic.Int64
	blobs    atomic.Int64
}

// PlainHTTPError is a registry beyond this machine reached without TLS.
type PlainHTTPError struct{ Host string }

func (e *PlainHTTPError) Error() string {
	return "registry " + e.Host + " would be reached over plain HTTP"
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.insecure && !netaddr.LoopbackHost(req.URL.Hostname()) {
		return nil, &PlainHTTPError{Host: req.URL.Host}
	}
	upload := strings.Contains(req.URL.Path, "/blobs/uploads/") && req.Method != http.MethodGet && req.Method != http.MethodDelete
	if upload && req.Body != nil && req.Body != http.NoBody {
		req.Body = &countingBody{ReadCloser: req.Body, n: &t.bytes}
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && upload && resp.StatusCode == http.StatusCreated && !req.URL.Query().Has("mount") {
		t.blobs.Add(1)
	}
	if err == nil {
		// The registry's retry wait is served before the response is
		// handed on, so that the retry that follows it comes after.
		if d := retryAfter(resp, time.Now()); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-req.Context().Done():
				timer.Stop()
			}
		}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// registryError words what went wrong with a registry as one line with
// the fix.
func registryError(reg, doing string, err error) error {
	var terr *transport.Error
	var plain *PlainHTTPError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var rerr tls.RecordHeaderError
	var oerr *net.OpError
	var reason, fix string
	switch {
	case errors.As(err, &plain):
		reason, fix = "would be reached over plain HTTP", "plain HTTP is used only for registries on this machine; set {InsecureRegistry} to allow it for this one"
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		reason = fmt.Sprintf("refused access (%d %s)", terr.StatusCode, http.StatusText(terr.StatusCode))
		fix = fmt.Sprintf("log in with `docker login %s` (or `crane auth login %s`), or check push permission to the repository", reg, reg)
	case errors.As(err, &terr):
		reason, fix = "answered "+problem.FirstLine(terr.Error()), "check the repository name and the registry"
	case errors.As(err, &uerr), errors.As(err, &herr), errors.As(err, &rerr):
		reason, fix = "failed TLS ("+problem.FirstLine(err.Error())+")", "trust its certificate authority (SSL_CERT_FILE), or set {InsecureRegistry} for a plain-HTTP registry"
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &oerr):
		reason, fix = "is unreachable ("+problem.FirstLine(err.Error())+")", "check the registry address and that it is running"
	default:
		reason, fix = "failed ("+problem.FirstLine(err.Error())+")", "check the registry and try again"
	}
	if reg == name.DefaultRegistry && !errors.As(err, &terr) {
		// Most likely the image was named without a registry host.
		fix += "; an image named without a registry host (team/pipeline:v1) is Docker Hub's: give the host, e.g. registry.example.com/team/pipeline:v1"
	}
	return problem.Failf(fix, "%s: registry %s %s", doing, reg, reason).Wrap(err)
}

func layoutError(dir, reason string) error {
	return problem.Usagef("give {OCILayout} an empty directory or an existing OCI layout", "OCI layout directory %s %s", dir, reason)
}

// checkLayoutDir refuses a directory that holds something other than an
// OCI layout, which writing into would mix with.
func checkLayoutDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return layoutError(dir, "cannot be read ("+err.Error()+")")
	case len(ents) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return layoutError(dir, "is not empty and not an OCI layout")
	}
	return nil
}

// writeLayout adds the image to an OCI layout, replacing one of the same
// name.
func writeLayout(dir string, tag name.Tag, images []made, idx v1.ImageIndex) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": tag.String()}
	matcher := match.Annotation("org.opencontainers.image.ref.name", tag.String())
	if idx != nil {
		err = p.ReplaceIndex(idx, matcher, layout.WithAnnotations(ann))
	} else {
		err = p.ReplaceImage(images[0].img, matcher, layout.WithAnnotations(ann))
	}
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	return nil
}

// sbomArtifact is doc as an OCI artifact whose subject is img, so that
// registries (or their referrers tag) list it with the image.
func sbomArtifact(img v1.Image, doc []byte, created time.Time) (v1.Image, error) {
	subject, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	return referrer(*subject, sbom.MediaType, doc, created, nil)
}

// referrer is doc as an OCI artifact of mediaType whose subject is the
// image or index described.
func referrer(subject v1.Descriptor, mediaType string, doc []byte, created time.Time, annotations map[string]string) (v1.Image, error) {
	a := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.MediaType(mediaType))
	a, err := mutate.Append(a, mutate.Addendum{Layer: static.NewLayer(doc, types.MediaType(mediaType))})
	if err != nil {
		return nil, err
	}
	a, err = mutate.CreatedAt(a, v1.Time{Time: created})
	if err != nil {
		return nil, err
	}
	ann := map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)}
	maps.Copy(ann, annotations)
	// The subject goes last: mutating annotations drops it.
	a = mutate.Annotations(a, ann).(v1.Image)
	return mutate.Subject(a, v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}).(v1.Image), nil
}

// appendLayout adds artifacts to an OCI layout, by digest.
func appendLayout(dir string, arts []v1.Image) error {
	if len(arts) == 0 {
		return nil
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	for _, a := range arts {
		d, err := a.Digest()
		if err != nil {
			return err
		}
		if err := p.ReplaceImage(a, match.Digests(d)); err != nil {
			return fmt.Errorf("writing OCI layout %s: %w", dir, err)
		}
	}
	return nil
}

// writeTarball writes a docker-load tarball atomically, so no
// half-written file is left at file.
func writeTarball(file string, tag name.Tag, img v1.Image) error {
	return atomicfile.Write(file, 0o644, func(w io.Writer) error { return tarball.Write(tag, img, w) })
}

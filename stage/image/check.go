package image

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
)

// CheckRegistry checks that the repository of ref can be pushed to:
// credentials in the default keychain, then the registry's own answer to
// an upload it is asked to start (and which is abandoned, so nothing is
// written and no tag moves).
func CheckRegistry(_ context.Context, ref string, insecure bool, transport http.RoundTripper) []check.Result {
	tag, err := ParseTag(ref, insecure)
	if err != nil {
		if p, ok := problem.As(err); ok {
			return []check.Result{check.Failure("image", p.Reason, p.Fix)}
		}
		return []check.Result{check.Failure("image", err.Error(), "give REPO[:TAG]")}
	}
	reg := tag.Context().Registry
	var out []check.Result
	auth, err := authn.DefaultKeychain.Resolve(reg)
	switch {
	case err != nil:
		out = append(out, check.Failure("registry credentials", err.Error(), "repair the docker config (~/.docker/config.json) or its credential helper"))
	case auth == authn.Anonymous:
		out = append(out, check.Warning("registry credentials", "none for "+reg.RegistryStr()+" in the docker config",
			fmt.Sprintf("log in with `docker login %s` unless the registry takes anonymous pushes", reg.RegistryStr())))
	default:
		out = append(out, check.Pass("registry credentials", "found for "+reg.RegistryStr()))
	}
	o := Options{Insecure: insecure, Transport: transport}
	if err := remote.CheckPushPermission(tag, authn.DefaultKeychain, o.transport()); err != nil {
		p, _ := problem.As(registryError(reg.RegistryStr(), "pushing to "+tag.Context().Name(), err))
		return append(out, check.Failure("registry push", p.Reason, p.Fix))
	}
	return append(out, check.Pass("registry push", "may push to "+tag.Context().Name()))
}

// CheckReferrers checks where the repository of ref keeps what refers to
// an image (signatures, attestations, SBOMs): the registry's referrers
// API, or, for a registry without one, the referrers tag that cosign and
// beamctl both read. Either serves; a registry that answers neither way
// fails.
func CheckReferrers(ctx context.Context, ref string, insecure bool, rt http.RoundTripper) check.Result {
	const name = "registry referrers"
	tag, err := ParseTag(ref, insecure)
	if err != nil {
		if p, ok := problem.As(err); ok {
			return check.Failure(name, p.Reason, p.Fix)
		}
		return check.Failure(name, err.Error(), "give REPO[:TAG]")
	}
	repo := tag.Context()
	reg := repo.RegistryStr()
	auth, err := authn.DefaultKeychain.Resolve(repo.Registry)
	if err != nil {
		return check.Failure(name, err.Error(), "repair the docker config (~/.docker/config.json) or its credential helper")
	}
	o := Options{Insecure: insecure, Transport: rt}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, o.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		p, _ := problem.As(registryError(reg, "reaching "+repo.Name(), err))
		return check.Failure(name, p.Reason, p.Fix)
	}
	// Any digest does: a registry with the API lists nothing for it.
	u := fmt.Sprintf("%s://%s/v2/%s/referrers/sha256:%064d", repo.Scheme(), reg, repo.RepositoryStr(), 0)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return check.Failure(name, err.Error(), "give REPO[:TAG]")
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		p, _ := problem.As(registryError(reg, "asking "+repo.Name()+" for referrers", err))
		return check.Failure(name, p.Reason, p.Fix)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return check.Pass(name, reg+" has the referrers API")
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return check.Pass(name, reg+" has no referrers API; signatures go in the sha256-DIGEST referrers tag, which cosign and beamctl read")
	default:
		return check.Failure(name, fmt.Sprintf("%s answered %s to a referrers request", reg, resp.Status), "check the registry's access rules for "+repo.Name())
	}
}

package image

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

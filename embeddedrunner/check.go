package embeddedrunner

import (
	"context"

	"github.com/beamctl/beamctl/internal/check"
)

// Check starts and stops an embedded runner: it proves a loopback port can
// be bound and prism's listener confined to loopback here.
func Check(ctx context.Context) check.Result {
	const name = "embedded runner"
	r, err := Start(ctx, Options{})
	if err != nil {
		return check.Failure(name, err.Error(), "run where beamctl can bind 127.0.0.1 and set SO_BINDTODEVICE (Linux), or use a job server: give {Endpoint}")
	}
	ep := r.Endpoint()
	r.Close()
	return check.Pass(name, "prism starts on "+ep+", confined to loopback")
}

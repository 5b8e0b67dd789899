// Package loopback tests flagread's flag-reading DoFn in a test that forces
// LOOPBACK, so that the DoFn runs in the process that set the flag.
package loopback

import (
	"flag"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/beamctl/beamctl/cmd/beamctl/testdata/pipetests/flagread"
)

func TestMain(m *testing.M) { ptest.Main(m) }

func TestPrefixInProcess(t *testing.T) {
	flag.Set("environment_type", "LOOPBACK")
	flag.Set("prefix", "x-")
	p, s := beam.NewPipelineWithRoot()
	passert.Equals(s, flagread.Prefix(s, beam.Create(s, "a", "b")), "x-a", "x-b")
	ptest.RunAndValidate(t, p)
}

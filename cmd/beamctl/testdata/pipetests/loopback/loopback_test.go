package loopback

import (
	"flag"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func TestMain(m *testing.M) { ptest.Main(m) }

func TestPrefixInProcess(t *testing.T) {
	flag.Set("environment_type", "LOOPBACK")
	flag.Set("prefix", "x-")
	p, s := beam.NewPipelineWithRoot()
	passert.Equals(s, Prefix(s, beam.Create(s, "a", "b")), "x-a", "x-b")
	ptest.RunAndValidate(t, p)
}

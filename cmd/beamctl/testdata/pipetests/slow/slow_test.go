// Package slow has a test whose pipeline's DoFn never ends, for
// interrupting beamctl test.
package slow

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func init() {
	register.Function1x0(wait)
}

func wait(int) {
	fmt.Fprintf(os.Stderr, "slow: worker %d waiting\n", os.Getpid())
	time.Sleep(time.Hour)
}

func TestMain(m *testing.M) { ptest.Main(m) }

func TestForever(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, wait, beam.Create(s, 1))
	ptest.RunAndValidate(t, p)
}

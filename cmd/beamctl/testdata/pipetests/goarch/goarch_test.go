// Package goarch checks which architecture its DoFn runs on: the one
// --want names.
package goarch

import (
	"flag"
	"runtime"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

var want = flag.String("want", runtime.GOARCH, "Architecture the DoFn must run on.")

func init() {
	register.Function1x1(archOf)
}

func archOf(int) string { return runtime.GOARCH }

func TestMain(m *testing.M) { ptest.Main(m) }

func TestWorkerArch(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	passert.Equals(s, beam.ParDo(s, archOf, beam.Create(s, 1)), *want)
	ptest.RunAndValidate(t, p)
}

package cgoformat

import (
	"flag"
	"runtime"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

var arch = flag.String("arch", runtime.GOARCH, "Architecture the DoFn must run on.")

func TestMain(m *testing.M) { ptest.Main(m) }

func TestFormat(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	passert.Equals(s, beam.ParDo(s, FormatFn, beam.Create(s, 7)), "count=7 on "+*arch)
	ptest.RunAndValidate(t, p)
}

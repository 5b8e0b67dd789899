// Package noptest runs pipelines from tests whose TestMain initialises
// Beam before the flags are parsed, without ptest.Main: its test binary
// cannot be a worker, so its pipelines run in the test process.
package noptest

import (
	"os"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func TestMain(m *testing.M) {
	beam.Init()
	os.Exit(m.Run())
}

func TestCount(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	passert.Count(s, beam.Create(s, 1, 2, 3), "three", 3)
	ptest.RunAndValidate(t, p)
}

// Command dofnmethod passes DoFns that lack the method their transform
// calls.
package main

import (
	"context"
	"flag"
	"log"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var output = flag.String("output", "", "File to write to.")

func init() {
	register.DoFn1x1[string, string](&upperFn{})
	beam.RegisterType(reflect.TypeOf((*sumFn)(nil)).Elem())
}

type upperFn struct{}

func (*upperFn) ProcessElement(w string) string { return w }

type sumFn struct{}

func (sumFn) AddInput(a, b int) int { return a + b }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	upper := beam.ParDo(s, upperFn{}, words)       // want dofnmethod "DoFn upperFn is passed by value to beam.ParDo, but its ProcessElement has a pointer receiver" "&upperFn\{…\}"
	beam.Combine(s, sumFn{}, beam.Create(s, 1, 2)) // want dofnmethod "DoFn sumFn has no MergeAccumulators method, which beam.Combine needs"
	textio.Write(s, *output, upper)
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

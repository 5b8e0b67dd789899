// Command dofnmethod passes its DoFns as their methods need.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var output = flag.String("output", "", "File to write to.")

func init() {
	register.DoFn1x1[string, string](&upperFn{})
	register.DoFn1x1[string, string](lowerFn{})
	register.Combiner1[int](&sumFn{})
}

type upperFn struct{}

func (*upperFn) ProcessElement(w string) string { return w }

type lowerFn struct{}

func (lowerFn) ProcessElement(w string) string { return w }

type sumFn struct{}

func (*sumFn) MergeAccumulators(a, b int) int { return a + b }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	beam.Combine(s, &sumFn{}, beam.Create(s, 1, 2))
	textio.Write(s, *output, beam.ParDo(s, lowerFn{}, beam.ParDo(s, &upperFn{}, words)))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

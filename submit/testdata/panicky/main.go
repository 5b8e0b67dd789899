// Command panicky is a pipeline whose DoFn panics on one element, so tests
// can see how a worker failure reaches the submitter.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var panicOn = flag.Int("panic_on", 2, "Element that makes the DoFn panic.")

func init() {
	register.DoFn2x0[int, func(int)](&explodeFn{})
	register.Emitter1[int]()
}

// explodeFn passes elements through and panics on PanicOn, which is baked
// into the DoFn at construction like any pipeline flag.
type explodeFn struct {
	PanicOn int
}

func (f *explodeFn) ProcessElement(x int, emit func(int)) {
	if x == f.PanicOn {
		panic(fmt.Sprintf("panicky: element %d is not welcome", x))
	}
	emit(x)
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	in := beam.Create(s, 1, 2, 3)
	beam.ParDo(s, &explodeFn{PanicOn: *panicOn}, in)
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("panicky: %v", err)
	}
}

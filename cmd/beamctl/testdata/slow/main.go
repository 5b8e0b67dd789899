// Command slow is a pipeline whose DoFn takes a long time per element, so
// tests can interrupt a job while it runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var delay = flag.Duration("delay", time.Minute, "How long each element takes.")

func init() {
	register.DoFn2x0[int, func(int)](&sleepFn{})
	register.Emitter1[int]()
}

type sleepFn struct {
	Delay time.Duration
}

// ProcessElement says when it starts, so a test can interrupt the job
// while it is sure to be running.
func (f *sleepFn) ProcessElement(x int, emit func(int)) {
	fmt.Fprintf(os.Stderr, "slow: element %d started\n", x)
	time.Sleep(f.Delay)
	emit(x)
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo(s, &sleepFn{Delay: *delay}, beam.Create(s, 1, 2, 3))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("slow: %v", err)
	}
}

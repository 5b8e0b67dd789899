// Command nosubmit constructs a pipeline but never runs it: a common
// mistake, which beamctl must report rather than wait for.
package main

import (
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func main() {
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	beam.Create(s, 1, 2, 3)
	_ = p
	fmt.Println("nosubmit: built a pipeline and forgot to run it")
}

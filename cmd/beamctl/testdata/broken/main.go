// Command broken is a pipeline with a type error, for build failure tests.
package main

import (
	"context"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

func main() {
	p := beam.NewPipeline()
	var lines int = "not a number"
	_ = lines
	beamx.Run(context.Background(), p)
}

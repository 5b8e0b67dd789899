// Command dyingworker is a pipeline whose worker exits before it connects
// to the runner, as a worker built for the wrong machine or missing a
// shared library would.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

func init() {
	if slices.Contains(os.Args, "--worker=true") {
		fmt.Fprintln(os.Stderr, "dyingworker: refusing to work")
		os.Exit(3)
	}
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	stats.Count(s, beam.Create(s, "a", "b", "a"))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("dyingworker: %v", err)
	}
}

// Command anonymousfn upper-cases its words with function literals, which
// workers cannot resolve.
package main

import (
	"context"
	"flag"
	"log"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var output = flag.String("output", "", "File to write to.")

func suffixer(sfx string) func(string) string {
	return func(w string) string { return w + sfx }
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	upper := beam.ParDo(s, func(w string) string { return strings.ToUpper(w) }, words) // want anonymousfn "an anonymous function is used as a DoFn in beam.ParDo"
	trim := func(w string) string { return strings.TrimSpace(w) }
	trimmed := beam.ParDo(s, trim, upper)                           // want anonymousfn "an anonymous function is used as a DoFn in beam.ParDo"
	textio.Write(s, *output, beam.ParDo(s, suffixer("!"), trimmed)) // want anonymousfn "a function made at run time"
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

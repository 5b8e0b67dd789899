// Command unregistered formats its words with a function that no init
// registers: workers cannot resolve it.
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

func shout(w string) string { return strings.ToUpper(w) }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	textio.Write(s, *output, beam.ParDo(s, shout, words)) // want unregistered "shout"
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

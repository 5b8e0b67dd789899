// Command unexportedfield prefixes words with a DoFn that carries its
// prefix in an exported field.
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

var (
	output = flag.String("output", "", "File to write to.")
	prefix = flag.String("prefix", "> ", "What to put before each word.")
)

func init() {
	register.DoFn1x1[string, string](&addPrefixFn{})
}

type addPrefixFn struct {
	Prefix string
	cache  map[string]string
}

// Setup runs on the worker: what it sets there stays there.
func (f *addPrefixFn) Setup() { f.cache = map[string]string{} }

func (f *addPrefixFn) ProcessElement(w string) string { return f.Prefix + w }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	textio.Write(s, *output, beam.ParDo(s, &addPrefixFn{Prefix: *prefix}, words))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

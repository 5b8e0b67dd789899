// Command anonymousfn upper-cases its words with a registered top-level
// function, and carries what a closure would capture in a DoFn's field.
package main

import (
	"context"
	"flag"
	"log"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var output = flag.String("output", "", "File to write to.")

func init() {
	register.Function1x1(upper)
	register.DoFn1x1[string, string](&suffixFn{})
}

func upper(w string) string { return strings.ToUpper(w) }

type suffixFn struct{ Suffix string }

func (f *suffixFn) ProcessElement(w string) string { return w + f.Suffix }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	fn := upper
	textio.Write(s, *output, beam.ParDo(s, &suffixFn{Suffix: "!"}, beam.ParDo(s, fn, words)))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

// pick chooses among named, registered functions: no closure.
func pick(loud bool) func(string) string {
	if loud {
		return upper
	}
	return strings.TrimSpace
}

func picked(s beam.Scope, words beam.PCollection) beam.PCollection {
	return beam.ParDo(s, pick(true), words)
}

// Command flagread prefixes words with a DoFn that carries the flag's
// value in its fields.
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

var (
	output = flag.String("output", "", "File to write to.")
	prefix = flag.String("prefix", "> ", "What to put before each word.")
	upper  = flag.Bool("upper", false, "Upper-case the words.")
	// sep is set in main before beam.Init, which workers run too.
	sep string
)

func init() {
	register.DoFn1x1[string, string](&addPrefixFn{})
}

type addPrefixFn struct {
	Prefix string
	Upper  bool
}

func (f *addPrefixFn) ProcessElement(w string) string {
	if f.Upper {
		w = strings.ToUpper(w)
	}
	return f.Prefix + sep + w
}

func main() {
	flag.Parse()
	sep = " "
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	textio.Write(s, *output, beam.ParDo(s, &addPrefixFn{Prefix: *prefix, Upper: *upper}, words))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

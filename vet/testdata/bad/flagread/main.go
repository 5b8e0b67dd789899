// Command flagread prefixes words with a DoFn that reads the flag itself:
// on the workers the flag holds its default.
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
	sfx    = flag.String("suffix", "!", "What to put after each word.")
	upper  bool
	suffix string
	loud   bool
)

func init() {
	flag.BoolVar(&upper, "upper", false, "Upper-case the words.")
	register.DoFn1x1[string, string](&addPrefixFn{})
	register.Function1x1(addSuffix)
}

type addPrefixFn struct{}

func (f *addPrefixFn) ProcessElement(w string) string {
	return *prefix + shape(w) // want flagread "DoFn addPrefixFn.ProcessElement reads prefix, which flag parsing sets only in the launcher"
}

func shape(w string) string {
	if upper { // want flagread "DoFn addPrefixFn.ProcessElement \(through shape\) reads upper"
		return strings.ToUpper(w)
	}
	return w
}

func addSuffix(w string) string {
	if loud { // want flagread "function addSuffix reads loud"
		w = strings.ToUpper(w)
	}
	return w + suffix // want flagread "function addSuffix reads suffix"
}

func main() {
	flag.Parse()
	// Workers run main up to beam.Init too, but with their own flags.
	suffix = *sfx
	beam.Init()
	// Workers never get past beam.Init.
	loud = true
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	textio.Write(s, *output, beam.ParDo(s, addSuffix, beam.ParDo(s, &addPrefixFn{}, words)))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

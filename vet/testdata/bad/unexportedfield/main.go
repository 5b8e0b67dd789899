// Command unexportedfield prefixes words with a DoFn whose prefix field is
// unexported: the launcher sets it, the workers never see it.
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
	prefix string
	Sep    string `json:"-"`
	cache  map[string]string
}

func (f *addPrefixFn) Setup() { f.cache = map[string]string{} }

func (f *addPrefixFn) ProcessElement(w string) string { return f.prefix + f.Sep + w }

func newAddPrefix(p string) *addPrefixFn {
	fn := &addPrefixFn{}
	fn.Sep = ""   // want unexportedfield "field Sep is set here but not encoded \(its json tag is \"-\"\)"
	fn.prefix = p // want unexportedfield "DoFn addPrefixFn: field prefix is set here but not encoded \(it is unexported\)"
	return fn
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	prefixed := beam.ParDo(s, &addPrefixFn{prefix: *prefix}, words) // want unexportedfield "DoFn addPrefixFn: field prefix is set here"
	textio.Write(s, *output, beam.ParDo(s, newAddPrefix(*prefix), prefixed))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

// Command unexportedfield prefixes words with a DoFn that carries its
// prefix in an exported field.
package main

import (
	"context"
	"encoding/json"
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

// selfEncodedFn encodes itself: its unexported field travels.
type selfEncodedFn struct{ sep string }

func (f selfEncodedFn) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"sep": f.sep})
}

func (f *selfEncodedFn) UnmarshalJSON(b []byte) error {
	var m map[string]string
	err := json.Unmarshal(b, &m)
	f.sep = m["sep"]
	return err
}

func (f *selfEncodedFn) ProcessElement(w string) string { return f.sep + w }

func init() { register.DoFn1x1[string, string](&selfEncodedFn{}) }

func selfEncoded(s beam.Scope, words beam.PCollection) beam.PCollection {
	return beam.ParDo(s, &selfEncodedFn{sep: "-"}, words)
}

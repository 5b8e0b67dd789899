// Command unregistered formats its words with a function that its init
// registers.
package main

import (
	"context"
	"flag"
	"log"
	"reflect"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/beamctl/beamctl/vet/testdata/regutil"
)

var output = flag.String("output", "", "File to write to.")

type word struct{ Text string }

func init() {
	register.Function1x1(shout)
	register.Function1x1(unwrap)
	beam.RegisterFunction(wrap)
	beam.RegisterType(reflect.TypeOf((*word)(nil)).Elem())
}

func shout(w string) string { return strings.ToUpper(w) }

func wrap(w string) word { return word{w} }

func unwrap(w word) string { return w.Text }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	wrapped := beam.ParDo(s, wrap, beam.ParDo(s, shout, words))
	textio.Write(s, *output, beam.ParDo(s, unwrap, wrapped))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

type lowerFn struct{}

func (*lowerFn) ProcessElement(w string) string { return strings.ToLower(w) }

// registerAll runs only from init: its registrations are as good as
// init's.
func registerAll() {
	register.DoFn1x1[string, string](&lowerFn{})
}

func init() { registerAll() }

func lower(s beam.Scope, words beam.PCollection) beam.PCollection {
	return beam.ParDo(s, &lowerFn{}, words)
}

// helped is registered through a helper of another package.
func helped(w string) string { return w + "." }

type typedFn struct{}

func (*typedFn) ProcessElement(w string) string { return w }

func init() {
	regutil.Register(helped)
	beam.RegisterType(reflect.TypeFor[typedFn]())
}

func more(s beam.Scope, words beam.PCollection) beam.PCollection {
	return beam.ParDo(s, &typedFn{}, beam.ParDo(s, helped, words))
}

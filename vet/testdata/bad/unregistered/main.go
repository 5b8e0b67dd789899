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
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var output = flag.String("output", "", "File to write to.")

func shout(w string) string { return strings.ToUpper(w) }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	textio.Write(s, *output, beam.ParDo(s, shout, words)) // want unregistered "function shout is used in beam.ParDo but registered nowhere" "register.Function1x1\(shout\)"
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

type word struct{ Text string }

type countFn struct{}

func (*countFn) ProcessElement(w word, emit func(string, int)) { emit(w.Text, 1) }

func init() {
	beam.RegisterFunction(wrap)
}

func wrap(w string) word { return word{w} }

// pipeline holds the other mistakes this check finds.
func pipeline(s beam.Scope, words beam.PCollection) beam.PCollection {
	wrapped := beam.ParDo(s, wrap, words)     // want unregistered "type word flows through function wrap in beam.ParDo but is registered nowhere"
	return beam.ParDo(s, &countFn{}, wrapped) // want unregistered "DoFn countFn is used in beam.ParDo but registered nowhere" "register.DoFn2x0\[word, func\(string, int\)\]\(&countFn\{\}\)"
}

func quiet(w string) string { return w }

// silenced holds mistakes silenced where they are.
func silenced(s beam.Scope, words beam.PCollection) {
	beam.ParDo(s, quiet, words) //beamctl:ignore unregistered registered by a package this test does not build
	//beamctl:ignore anonymousfn,unregistered
	beam.ParDo(s, func(w string) string { return w }, words)
}

type upperFn struct{}

func (*upperFn) ProcessElement(w string) string { return strings.ToUpper(w) }

// launchOnly registers a DoFn where only the launcher does.
func launchOnly(s beam.Scope, words beam.PCollection, upper bool) beam.PCollection {
	if upper {
		register.DoFn1x1[string, string](&upperFn{}) // want unregistered "register.DoFn1x1 registers upperFn in launchOnly, not in an init function" "move the registration to an init function"
	}
	return beam.ParDo(s, &upperFn{}, words)
}

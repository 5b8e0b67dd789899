// Command mistakes makes, as --mistake says, one of the pipeline mistakes
// that show only once a worker runs the pipeline.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"reflect"
	"regexp"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var mistake = flag.String("mistake", "closure", "closure, launch-only-type, launch-only-dofn, helper-panic, library-panic or error")

func init() {
	// The older registration, which registers no types.
	beam.RegisterFunction(toRecord)
	register.Function1x1(compile)
	register.Function1x2(reject)
	register.DoFn1x1[string, string](&pickFn{})
}

// upperFn is registered only where the launcher's flag says so: workers
// never see that flag's value.
type upperFn struct{ Suffix string }

func (f *upperFn) ProcessElement(w string) string { return strings.ToUpper(w) + f.Suffix }

type record struct{ W string }

func toRecord(w string) record { return record{W: w} }

type pickFn struct{ Index int }

func (f *pickFn) ProcessElement(w string) string { return pick(w, f.Index) }

func pick(w string, i int) string { return w[i : i+1] }

func compile(w string) string { return regexp.MustCompile(w + "(").String() }

func reject(w string) (string, error) { return "", errors.New("mistakes: " + w + " is not a word") }

func main() {
	flag.Parse()
	switch *mistake {
	case "launch-only-type":
		beam.RegisterType(reflect.TypeOf((*record)(nil)).Elem())
	case "launch-only-dofn":
		register.DoFn1x1[string, string](&upperFn{})
	}
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b")
	switch *mistake {
	case "closure":
		beam.ParDo(s.Scope("Upper"), func(w string) string { return strings.ToUpper(w) }, words)
	case "launch-only-type":
		beam.ParDo(s, toRecord, words)
	case "launch-only-dofn":
		beam.ParDo(s, &upperFn{Suffix: "!"}, words)
	case "helper-panic":
		beam.ParDo(s.Scope("Pick"), &pickFn{Index: 3}, words)
	case "library-panic":
		beam.ParDo(s, compile, words)
	case "error":
		beam.ParDo(s, reject, words)
	default:
		log.Fatalf("mistakes: unknown --mistake %q", *mistake)
	}
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

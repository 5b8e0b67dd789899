// Package flagfield is flagread fixed: the DoFn carries the flag's value
// in an exported field, which is encoded with it and reaches the workers.
package flagfield

import (
	"flag"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

var prefix = flag.String("prefix", "", "Prefix added to each word.")

func init() {
	register.DoFn1x1[string, string](&prefixFn{})
}

type prefixFn struct{ Prefix string }

func (f *prefixFn) ProcessElement(w string) string { return f.Prefix + w }

// Prefix adds --prefix to each word.
func Prefix(s beam.Scope, words beam.PCollection) beam.PCollection {
	return beam.ParDo(s, &prefixFn{Prefix: *prefix}, words)
}

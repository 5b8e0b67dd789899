// Package loopback has a DoFn that reads a flag, and a test that forces
// LOOPBACK, so that the DoFn runs in the process that set the flag.
package loopback

import (
	"flag"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

var prefix = flag.String("prefix", "", "Prefix added to each word.")

func init() {
	register.DoFn1x1[string, string](&prefixFn{})
}

type prefixFn struct{}

func (f *prefixFn) ProcessElement(w string) string { return *prefix + w }

// Prefix adds --prefix to each word.
func Prefix(s beam.Scope, words beam.PCollection) beam.PCollection {
	return beam.ParDo(s, &prefixFn{}, words)
}

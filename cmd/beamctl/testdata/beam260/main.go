// Command beam260 counts words with the Beam Go SDK v2.60.0, older than
// the SDK beamctl embeds: beamctl must build, run and stage it.
package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var (
	input  = flag.String("input", "", "file to read")
	output = flag.String("output", "", "file to write the counts to")
)

var wordRE = regexp.MustCompile(`[a-zA-Z]+('[a-z])?`)

func init() {
	beam.RegisterFunction(split)
	beam.RegisterFunction(format)
}

func split(line string, emit func(string)) {
	for _, w := range wordRE.FindAllString(strings.ToLower(line), -1) {
		emit(w)
	}
}

func format(w string, c int) string { return fmt.Sprintf("%s: %d", w, c) }

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	lines := textio.Read(s, *input)
	counted := stats.Count(s, beam.ParDo(s, split, lines))
	textio.Write(s, *output, beam.ParDo(s, format, counted))
	if err := beamx.Run(context.Background(), p); err != nil {
		panic(err)
	}
}

// Command wordcount counts the words of a text input with Apache Beam.
//
//	beamctl run ./examples/wordcount -- --input=examples/wordcount/testdata/input.txt --output=/tmp/counts.txt
//
// Each output line is "word: count", sorted neither by word nor by count,
// since a Beam text sink writes in whatever order the runner produces.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"regexp"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var (
	input  = flag.String("input", "", "File or glob of text files to read (required).")
	output = flag.String("output", "", "File to write the counts to (required).")
)

// wordRE splits on anything that is not a letter, digit or apostrophe, so
// "king's" stays one word and punctuation never becomes one.
var wordRE = regexp.MustCompile(`[\p{L}\p{N}']+`)

var (
	linesRead  = beam.NewCounter("wordcount", "lines")
	emptyLines = beam.NewCounter("wordcount", "empty_lines")
	lineLength = beam.NewDistribution("wordcount", "line_length")
)

func init() {
	register.DoFn3x0[context.Context, string, func(string)](&extractFn{})
	register.Emitter1[string]()
	register.Function2x1(formatFn)
}

// extractFn emits the lower-cased words of a line.
type extractFn struct{}

func (*extractFn) ProcessElement(ctx context.Context, line string, emit func(string)) {
	linesRead.Inc(ctx, 1)
	lineLength.Update(ctx, int64(len(line)))
	if strings.TrimSpace(line) == "" {
		emptyLines.Inc(ctx, 1)
		return
	}
	for _, w := range wordRE.FindAllString(line, -1) {
		emit(strings.ToLower(w))
	}
}

func formatFn(word string, count int) string {
	return fmt.Sprintf("%s: %d", word, count)
}

// CountWords turns lines of text into "word: count" lines.
func CountWords(s beam.Scope, lines beam.PCollection) beam.PCollection {
	s = s.Scope("CountWords")
	words := beam.ParDo(s, &extractFn{}, lines)
	counted := stats.Count(s, words)
	return beam.ParDo(s, formatFn, counted)
}

func main() {
	flag.Parse()
	beam.Init()
	if *input == "" || *output == "" {
		log.Fatal("wordcount: --input and --output are required")
	}

	p, s := beam.NewPipelineWithRoot()
	lines := textio.Read(s, *input)
	textio.Write(s, *output, CountWords(s, lines))

	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("wordcount: %v", err)
	}
}

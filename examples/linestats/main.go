// Command linestats reports how many lines, words and bytes a text input
// has. It lives in a module of its own, as most pipelines do, apart from
// the tool that builds them.
//
//	beamctl run ./examples/linestats -- --input=examples/wordcount/testdata/input.txt --output=/tmp/stats.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var (
	input  = flag.String("input", "", "File or glob of text files to read (required).")
	output = flag.String("output", "", "File to write the statistics to (required).")
)

// Stats are the totals of a text.
type Stats struct {
	Lines, Words, Bytes int64
}

func init() {
	register.Function1x1(lineStats)
	register.Function2x1(addStats)
	register.Function1x1(formatStats)
}

func lineStats(line string) Stats {
	return Stats{Lines: 1, Words: int64(len(strings.Fields(line))), Bytes: int64(len(line))}
}

func addStats(a, b Stats) Stats {
	return Stats{Lines: a.Lines + b.Lines, Words: a.Words + b.Words, Bytes: a.Bytes + b.Bytes}
}

func formatStats(s Stats) string {
	return fmt.Sprintf("lines: %d\nwords: %d\nbytes: %d", s.Lines, s.Words, s.Bytes)
}

func main() {
	flag.Parse()
	beam.Init()
	if *input == "" || *output == "" {
		log.Fatal("linestats: --input and --output are required")
	}
	p, s := beam.NewPipelineWithRoot()
	lines := textio.Read(s, *input)
	total := beam.Combine(s, addStats, beam.ParDo(s, lineStats, lines))
	textio.Write(s, *output, beam.ParDo(s, formatStats, total))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("linestats: %v", err)
	}
}

// Command cgowords counts the words of a text input as wordcount does, but
// writes each "word: count" line with C's snprintf: a pipeline whose DoFn
// calls C, which beamctl builds only with --cgo.
//
//	beamctl run ./testdata/cgowords --cgo -- --input=examples/wordcount/testdata/input.txt --output=/tmp/counts.txt
package main

/*
#include <stdio.h>
#include <stdlib.h>

// format_count writes "word: count" into buf, as C formats it.
static int format_count(char *buf, size_t size, const char *word, long count) {
	return snprintf(buf, size, "%s: %ld", word, count);
}
*/
import "C"

import (
	"context"
	"flag"
	"log"
	"regexp"
	"strings"
	"unsafe"

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

var wordRE = regexp.MustCompile(`[\p{L}\p{N}']+`)

func init() {
	register.Function2x0(extractFn)
	register.Emitter1[string]()
	register.Function2x1(formatFn)
}

func extractFn(line string, emit func(string)) {
	for _, w := range wordRE.FindAllString(line, -1) {
		emit(strings.ToLower(w))
	}
}

// formatFn formats in C, so that a worker built without cgo, or whose C
// library is missing where it runs, cannot produce the output.
func formatFn(word string, count int) string {
	cw := C.CString(word)
	defer C.free(unsafe.Pointer(cw))
	buf := make([]byte, len(word)+32)
	n := C.format_count((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), cw, C.long(count))
	return string(buf[:n])
}

func main() {
	flag.Parse()
	beam.Init()
	if *input == "" || *output == "" {
		log.Fatal("cgowords: --input and --output are required")
	}
	p, s := beam.NewPipelineWithRoot()
	lines := textio.Read(s, *input)
	words := beam.ParDo(s, extractFn, lines)
	textio.Write(s, *output, beam.ParDo(s, formatFn, stats.Count(s, words)))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("cgowords: %v", err)
	}
}

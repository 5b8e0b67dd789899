// Command watched is a pipeline that run --watch tests edit: each edit of
// mark shows in its output, and delay makes its DoFn take long enough to
// be interrupted by the next save.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

const (
	mark  = "v1"
	delay = 0 * time.Second
)

var output = flag.String("output", "", "Where the tagged words go.")

func init() {
	register.Function1x1(tag)
}

func tag(w string) string {
	if delay > 0 {
		fmt.Fprintln(os.Stderr, "watched: sleeping")
		time.Sleep(delay)
	}
	return mark + ":" + w
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	textio.Write(s, *output, beam.ParDo(s, tag, beam.Create(s, "a", "b")))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("watched: %v", err)
	}
}

// Command forker is a pipeline whose DoFn leaves child processes running in
// the background, one of them in a session of its own, then waits: beamctl
// must not let them outlive the worker's pool, however the pool ends.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

var tag = flag.String("tag", "forker", "Argument that names the background child, so it can be found.")

func init() {
	register.DoFn2x0[int, func(int)](&forkFn{})
	register.Emitter1[int]()
}

type forkFn struct {
	Tag string
}

func (f *forkFn) ProcessElement(x int, emit func(int)) {
	// sleep's argument carries the tag, so a test finds the children by it.
	// One leaves the worker's process group and session, as a daemon does.
	detached := exec.Command("sleep", "3600."+f.Tag)
	detached.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := detached.Start(); err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "forker: started detached child %d\n", detached.Process.Pid)
	cmd := exec.Command("sh", "-c", "exec sleep 3600."+f.Tag)
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "forker: started background child %d\n", cmd.Process.Pid)
	time.Sleep(time.Hour)
	emit(x)
}

func main() {
	flag.Parse()
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo(s, &forkFn{Tag: *tag}, beam.Create(s, 1))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatalf("forker: %v", err)
	}
}

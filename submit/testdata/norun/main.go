// Command norun accepts the flags of a Beam launcher but never runs a
// pipeline, like a program that forgets to call beamx.Run.
package main

import (
	"flag"
	"fmt"
)

func main() {
	flag.String("runner", "", "")
	flag.String("endpoint", "", "")
	flag.Bool("async", false, "")
	flag.String("worker_binary", "", "")
	flag.Parse()
	fmt.Println("norun: constructed nothing, bye")
}

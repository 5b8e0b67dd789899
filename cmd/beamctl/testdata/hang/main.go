// Command hang imports Beam but never returns, like a launcher stuck on a
// network call before it submits its pipeline.
package main

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func main() {
	beam.Init()
	fmt.Println("hang: waiting forever")
	for {
		time.Sleep(time.Hour)
	}
}

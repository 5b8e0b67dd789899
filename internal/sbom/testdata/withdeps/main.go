// Command withdeps links two dependency modules, so that its build info
// lists them: a test binary's build info lists none.
package main

import (
	"fmt"

	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"
)

func main() {
	var g errgroup.Group
	g.Go(func() error { return nil })
	fmt.Println(semver.IsValid("v1.0.0"), g.Wait())
}

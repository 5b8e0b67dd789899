// Package regutil registers DoFns for the test pipelines, as a team's own
// helper package might.
package regutil

import "github.com/apache/beam/sdks/v2/go/pkg/beam"

// Register registers each DoFn or function with the SDK.
func Register(fns ...any) {
	for _, fn := range fns {
		beam.RegisterDoFn(fn)
	}
}

package submit_test

import (
	"os"
	"testing"
	"time"

	"github.com/beamctl/beamctl/stage/stagetest"
)

// Binaries built once per test binary, and a prism job server shared by the
// tests (they run one at a time: prism's artifact store is not safe for
// concurrent staging).
var (
	wcBin, panickyBin, norunBin, hangBin, slowBin, prismBin string
	prism                                                   *stagetest.Prism
)

func TestMain(m *testing.M) {
	os.Exit(stagetest.Main(m, 15*time.Minute, map[string]string{
		"wordcount": "github.com/beamctl/beamctl/examples/wordcount",
		"panicky":   "github.com/beamctl/beamctl/submit/testdata/panicky",
		"norun":     "github.com/beamctl/beamctl/submit/testdata/norun",
		"hang":      "github.com/beamctl/beamctl/submit/testdata/hang",
		"slow":      "github.com/beamctl/beamctl/cmd/beamctl/testdata/slow",
	}, func(s *stagetest.Suite) {
		prism, prismBin = s.Prism, s.Bins["prism"]
		wcBin, panickyBin, norunBin, hangBin, slowBin = s.Bins["wordcount"], s.Bins["panicky"], s.Bins["norun"], s.Bins["hang"], s.Bins["slow"]
	}))
}

func needBinaries(tb testing.TB) {
	tb.Helper()
	if prism == nil {
		tb.Skip("needs built pipelines and prism; skipped in -short mode")
	}
}

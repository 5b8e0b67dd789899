package submit_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
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
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "submit-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	builds := []struct {
		out  *string
		name string
		pkg  string
	}{
		{&wcBin, "wordcount", "github.com/beamctl/beamctl/examples/wordcount"},
		{&panickyBin, "panicky", "github.com/beamctl/beamctl/submit/testdata/panicky"},
		{&norunBin, "norun", "github.com/beamctl/beamctl/submit/testdata/norun"},
		{&hangBin, "hang", "github.com/beamctl/beamctl/submit/testdata/hang"},
		{&slowBin, "slow", "github.com/beamctl/beamctl/cmd/beamctl/testdata/slow"},
	}
	errs := make([]error, len(builds)+1)
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Go(func() { *b.out, errs[i] = stagetest.Build(ctx, dir, b.name, b.pkg) })
	}
	wg.Go(func() { prismBin, errs[len(builds)] = stagetest.Build(ctx, dir, "prism", stagetest.PrismPackage) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	prism, err = stagetest.StartPrism(ctx, prismBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	prism.Close()
	return code
}

func needBinaries(tb testing.TB) {
	tb.Helper()
	if prism == nil {
		tb.Skip("needs built pipelines and prism; skipped in -short mode")
	}
}

package pipetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCallsPtestMain(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      bool
	}{
		{"ptest.Main", `package p
import ("testing"; "github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest")
func TestMain(m *testing.M) { ptest.Main(m) }`, true},
		{"renamed import, MainRet", `package p
import ("os"; "testing"; pt "github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest")
func TestMain(m *testing.M) { os.Exit(pt.MainRet(m)) }`, true},
		{"its own flag.Parse and beam.Init", `package p
import ("flag"; "os"; "testing"; "github.com/apache/beam/sdks/v2/go/pkg/beam")
func TestMain(m *testing.M) { flag.Parse(); beam.Init(); os.Exit(m.Run()) }`, true},
		{"beam.Init before the flags are parsed", `package p
import ("os"; "testing"; "github.com/apache/beam/sdks/v2/go/pkg/beam")
func TestMain(m *testing.M) { beam.Init(); os.Exit(m.Run()) }`, false},
		{"ptest.Main outside TestMain", `package p
import ("testing"; "github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest")
func setup(m *testing.M) { ptest.Main(m) }`, false},
		{"another package named ptest", `package p
import ("testing"; "example.com/ptest")
func TestMain(m *testing.M) { ptest.Main(m) }`, false},
		{"no TestMain", `package p
import "testing"
func TestX(t *testing.T) {}`, false},
		{"does not parse", `package p func`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x_test.go")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := callsPtestMain(path)
			if err != nil || got != tc.want {
				t.Errorf("callsPtestMain = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestQuoteFields(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"/usr/bin/beamctl", "test-exec", "/tmp/c.json"}, "/usr/bin/beamctl test-exec /tmp/c.json"},
		{[]string{"/home/a b/beamctl", "x"}, "'/home/a b/beamctl' x"},
		{[]string{"/it's here/beamctl"}, `"/it's here/beamctl"`},
	} {
		if got := quoteFields(tc.in); got != tc.want {
			t.Errorf("quoteFields(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTargetEvents(t *testing.T) {
	var out strings.Builder
	w := &targetEvents{to: &out, target: "linux/arm64"}
	w.Write([]byte(`{"Action":"run","Test":"TestA"}` + "\n" + `# go's own line` + "\n" + `{"Action":"pa`))
	w.Write([]byte(`ss","Test":"TestA"}`))
	w.flush()
	want := `{"Action":"run","Target":"linux/arm64","Test":"TestA"}` + "\n" + "# go's own line\n" + `{"Action":"pass","Target":"linux/arm64","Test":"TestA"}` + "\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

package boot

import (
	"path"
	"path/filepath"
	"strings"
	"testing"

	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
)

// FuzzProvisionInfo decodes provision info as a runner sends it and
// chooses where its artifacts are staged, as boot does before retrieving
// anything: a runner is not trusted with this machine's files, so every
// name stays inside the staging directory, no two artifacts share one,
// none that boot makes up looks like a partial download, and a refusal
// is one line.
func FuzzProvisionInfo(f *testing.F) {
	staged := func(name string) *pipepb.ArtifactInformation {
		role, _ := proto.Marshal(&pipepb.ArtifactStagingToRolePayload{StagedName: name})
		return &pipepb.ArtifactInformation{TypeUrn: beam.FileArtifactURN, RoleUrn: beam.StagingToRoleURN, RolePayload: role}
	}
	url := func(u string) *pipepb.ArtifactInformation {
		pl, _ := proto.Marshal(&pipepb.ArtifactUrlPayload{Url: u})
		return &pipepb.ArtifactInformation{TypeUrn: beam.URLArtifactURN, TypePayload: pl}
	}
	file := beam.FileArtifact(beam.File{Path: "/tmp/staged/worker", SHA256: strings.Repeat("0", 64)}, beam.GoWorkerRoleURN)
	for _, deps := range [][]*pipepb.ArtifactInformation{
		{file},
		{staged("worker"), file},
		{staged("../../etc/passwd")},
		{staged("a/b/../c"), staged("a/c")},
		{url("https://example.com/x/worker"), url("https://example.com/y/worker"), staged("worker")},
		{staged(".partial-worker"), file},
		{{TypeUrn: "beam:artifact:type:unknown:v1"}},
	} {
		data, err := proto.Marshal(&fnpb.ProvisionInfo{Dependencies: deps})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var info fnpb.ProvisionInfo
		if proto.Unmarshal(data, &info) != nil {
			return
		}
		if po := info.GetPipelineOptions(); po != nil {
			// What boot writes to the worker's PIPELINE_OPTIONS_FILE.
			if _, err := protojson.Marshal(po); err != nil {
				return
			}
		}
		names, err := stagedNames(info.GetDependencies())
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal spans lines: %q", err)
			}
			return
		}
		if len(names) != len(info.GetDependencies()) {
			t.Fatalf("%d names for %d artifacts", len(names), len(info.GetDependencies()))
		}
		seen := map[string]bool{}
		for i, n := range names {
			if !filepath.IsLocal(filepath.FromSlash(n)) {
				t.Fatalf("artifact staged as %q, outside the staging directory", n)
			}
			if seen[n] {
				t.Fatalf("two artifacts staged as %q", n)
			}
			seen[n] = true
			// A name the runner gives is its own to choose (partial
			// downloads are created exclusively); one made up here keeps
			// clear of theirs.
			if _, given, _ := stagedName(info.GetDependencies()[i]); !given && strings.HasPrefix(path.Base(n), partialPrefix) {
				t.Fatalf("artifact staged as %q, a partial download's name", n)
			}
		}
	})
}

// Package graph shows the pipeline a runner executes: it turns a Beam
// pipeline proto, as beamctl captures it or a job server hands it back,
// into a model of its transforms and PCollections with readable coders,
// renders it as text, JSON, DOT, Mermaid or SVG, and compares two of them.
package graph

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
)

// Schema names the JSON form of a Graph, for readers to check.
const Schema = "beamctl.graph/v1"

// Graph is a pipeline's transforms and PCollections.
type Graph struct {
	Schema string `json:"schema"`
	// Roots are the unique names of the top-level transforms, in the
	// pipeline's order.
	Roots []string `json:"roots"`
	// Transforms are in the order of the composite tree, depth first: each
	// composite before its parts.
	Transforms []*Transform `json:"transforms"`
	// PCollections are in the order of their producers.
	PCollections []*PCollection `json:"pcollections"`
	// Environments are where transforms run.
	Environments []Environment `json:"environments,omitempty"`

	byName map[string]*Transform
	byPC   map[string]*PCollection
}

// Transform is one transform of the pipeline: a composite, with parts, or
// a leaf, which a runner executes.
type Transform struct {
	// ID is the pipeline's own id of the transform.
	ID string `json:"id"`
	// UniqueName is the transform's name, unique in the pipeline and
	// stable across builds of the same code.
	UniqueName string `json:"unique_name"`
	// URN says what the transform does; composites may have none.
	URN string `json:"urn,omitempty"`
	// Parent is the unique name of the enclosing composite; empty at the
	// top.
	Parent string `json:"parent,omitempty"`
	// Subtransforms are the unique names of a composite's parts.
	Subtransforms []string `json:"subtransforms,omitempty"`
	// Inputs and Outputs map the transform's local names of its
	// PCollections to their ids.
	Inputs  map[string]string `json:"inputs,omitempty"`
	Outputs map[string]string `json:"outputs,omitempty"`
	// SideInputs are the local names of the inputs a ParDo reads as side
	// inputs, not as its main input.
	SideInputs []string `json:"side_inputs,omitempty"`
	// Environment is the id of the environment the transform runs in;
	// empty for those the runner executes itself.
	Environment string `json:"environment,omitempty"`
}

// Leaf reports whether t has no parts: a transform the runner executes.
func (t *Transform) Leaf() bool { return len(t.Subtransforms) == 0 }

// PCollection is a collection of elements flowing between transforms.
type PCollection struct {
	// ID is the pipeline's own id of the PCollection.
	ID string `json:"id"`
	// Name is the unique name of the leaf transform that produces it, a
	// dot, and its local name there: unlike ID, it stays the same when a
	// transform is added before it.
	Name string `json:"name"`
	// Coder is the element type its coder encodes, e.g. KV<string,int>.
	Coder string `json:"coder"`
	// CoderID is the pipeline's id of that coder.
	CoderID string `json:"coder_id"`
	// Bounded is false for a PCollection without end (streaming).
	Bounded bool `json:"bounded"`
	// Windowing is its windowing strategy, e.g. global or fixed(1m0s).
	Windowing string `json:"windowing"`
}

// Environment is where some transforms run.
type Environment struct {
	ID  string `json:"id"`
	URN string `json:"urn"`
}

// ErrNoPipeline is a pipeline with no transforms.
var ErrNoPipeline = errors.New("the pipeline has no transforms")

// FromPipeline builds the graph of p.
func FromPipeline(p *pipepb.Pipeline) (*Graph, error) {
	comps := p.GetComponents()
	protos := comps.GetTransforms()
	if len(protos) == 0 {
		return nil, ErrNoPipeline
	}
	g := &Graph{Schema: Schema}
	parent := map[string]string{}
	for id, t := range protos {
		for _, sub := range t.GetSubtransforms() {
			if _, ok := protos[sub]; !ok {
				return nil, fmt.Errorf("transform %q names a part %q the pipeline lacks", t.GetUniqueName(), sub)
			}
			parent[sub] = id
		}
	}
	seen := map[string]bool{}
	var walk func(id string) error
	walk = func(id string) error {
		if seen[id] {
			return fmt.Errorf("transform %q is part of more than one composite, or of itself", protos[id].GetUniqueName())
		}
		seen[id] = true
		t := protos[id]
		tr := &Transform{ID: id, UniqueName: t.GetUniqueName(), URN: t.GetSpec().GetUrn(),
			Inputs: t.GetInputs(), Outputs: t.GetOutputs(), Environment: t.GetEnvironmentId()}
		if t.GetSpec().GetUrn() == beam.ParDoURN {
			var pl pipepb.ParDoPayload
			if proto.Unmarshal(t.GetSpec().GetPayload(), &pl) == nil && len(pl.GetSideInputs()) > 0 {
				tr.SideInputs = sortedKeys(pl.GetSideInputs())
			}
		}
		if pid, ok := parent[id]; ok {
			tr.Parent = protos[pid].GetUniqueName()
		}
		for _, sub := range t.GetSubtransforms() {
			tr.Subtransforms = append(tr.Subtransforms, protos[sub].GetUniqueName())
		}
		g.Transforms = append(g.Transforms, tr)
		for _, sub := range t.GetSubtransforms() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	roots := p.GetRootTransformIds()
	// Transforms no root reaches still belong to the pipeline; they are
	// shown as roots of their own, after the pipeline's.
	var orphans []string
	for id := range protos {
		if _, ok := parent[id]; !ok && !slices.Contains(roots, id) {
			orphans = append(orphans, id)
		}
	}
	sort.Strings(orphans)
	for _, id := range append(slices.Clone(roots), orphans...) {
		t, ok := protos[id]
		if !ok {
			return nil, fmt.Errorf("the pipeline's root transform %q is not among its transforms", id)
		}
		if err := walk(id); err != nil {
			return nil, err
		}
		g.Roots = append(g.Roots, t.GetUniqueName())
	}
	if err := g.index(); err != nil {
		return nil, err
	}

	// PCollections take the name of the leaf that produces them.
	named := map[string]string{}
	var order []string
	for _, t := range g.Transforms {
		if !t.Leaf() {
			continue
		}
		for _, tag := range sortedKeys(t.Outputs) {
			id := t.Outputs[tag]
			if _, ok := named[id]; !ok {
				named[id] = t.UniqueName + "." + tag
				order = append(order, id)
			}
		}
	}
	var rest []string
	for id := range comps.GetPcollections() {
		if _, ok := named[id]; !ok {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	for _, id := range append(order, rest...) {
		pc, ok := comps.GetPcollections()[id]
		if !ok {
			return nil, fmt.Errorf("a transform names PCollection %q, which the pipeline lacks", id)
		}
		name := named[id]
		if name == "" {
			name = id
		}
		g.PCollections = append(g.PCollections, &PCollection{
			ID: id, Name: name,
			Coder:     CoderName(comps.GetCoders(), pc.GetCoderId()),
			CoderID:   pc.GetCoderId(),
			Bounded:   pc.GetIsBounded() != pipepb.IsBounded_UNBOUNDED,
			Windowing: windowingName(comps.GetWindowingStrategies()[pc.GetWindowingStrategyId()]),
		})
	}
	for _, id := range sortedKeys(comps.GetEnvironments()) {
		g.Environments = append(g.Environments, Environment{ID: id, URN: comps.GetEnvironments()[id].GetUrn()})
	}
	return g, g.index()
}

// index makes the lookups by name, and checks that names are unique and
// every PCollection a transform names is known.
func (g *Graph) index() error {
	g.byName = make(map[string]*Transform, len(g.Transforms))
	for _, t := range g.Transforms {
		if _, dup := g.byName[t.UniqueName]; dup {
			return fmt.Errorf("two transforms are named %q", t.UniqueName)
		}
		g.byName[t.UniqueName] = t
	}
	g.byPC = make(map[string]*PCollection, len(g.PCollections))
	for _, pc := range g.PCollections {
		g.byPC[pc.ID] = pc
	}
	if len(g.PCollections) == 0 {
		return nil
	}
	for _, t := range g.Transforms {
		for _, m := range []map[string]string{t.Inputs, t.Outputs} {
			for _, id := range m {
				if g.byPC[id] == nil {
					return fmt.Errorf("transform %q names PCollection %q, which the graph lacks", t.UniqueName, id)
				}
			}
		}
	}
	return nil
}

// Transform is the transform of the unique name, or nil.
func (g *Graph) Transform(name string) *Transform { return g.byName[name] }

// PCollection is the PCollection of the id, or nil.
func (g *Graph) PCollection(id string) *PCollection { return g.byPC[id] }

// Leaves are the transforms the runner executes, in the graph's order.
func (g *Graph) Leaves() []*Transform {
	var out []*Transform
	for _, t := range g.Transforms {
		if t.Leaf() {
			out = append(out, t)
		}
	}
	return out
}

// Depth is how deep t is in the composite tree: 1 for a root.
func (g *Graph) Depth(t *Transform) int {
	d := 1
	for p := g.byName[t.Parent]; p != nil; p = g.byName[p.Parent] {
		d++
	}
	return d
}

// ShortName is t's name within its parent: the unique name without the
// parent's, which prefixes it in pipelines the SDKs build.
func (g *Graph) ShortName(t *Transform) string {
	if t.Parent == "" {
		return t.UniqueName
	}
	if s, ok := strings.CutPrefix(t.UniqueName, t.Parent+"/"); ok && s != "" {
		return s
	}
	return t.UniqueName
}

// ShortURN words a transform URN without its namespace and version:
// beam:transform:pardo:v1 is pardo.
func ShortURN(urn string) string {
	s := strings.TrimPrefix(urn, "beam:transform:")
	if i := strings.LastIndex(s, ":v"); i > 0 {
		s = s[:i]
	}
	return s
}

// sortedKeys are m's keys, shorter first: the Go SDK's local names i0,
// i1 … i10 then come in their numeric order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

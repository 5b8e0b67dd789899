package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Diff is what changed from one graph to another: the transforms and
// PCollections added, removed or changed, the latter with their coders.
// Transforms are matched by unique name and PCollections by Name, which
// an SDK keeps when the code around them changes; ids are not compared.
type Diff struct {
	Changes []Change `json:"changes"`
}

// Change is one transform or PCollection that differs.
type Change struct {
	// Op is added, removed or changed.
	Op string `json:"change"`
	// Kind is transform or pcollection.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// What is an added or removed transform's URN, or PCollection's coder.
	What string `json:"what,omitempty"`
	// Fields are what changed of a changed one.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one property that changed.
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// The kinds and ops of a Change.
const (
	KindTransform   = "transform"
	KindPCollection = "pcollection"
	Added           = "added"
	Removed         = "removed"
	Changed         = "changed"
)

// Empty reports whether the graphs are the same.
func (d *Diff) Empty() bool { return len(d.Changes) == 0 }

// Compare says what changed from old to new.
func Compare(old, new *Graph) *Diff {
	d := &Diff{Changes: []Change{}}
	oldPC, newPC := pcByName(old), pcByName(new)
	// A transform reads a PCollection added or removed because of that
	// change, which is told as such; only a rewiring between PCollections
	// both graphs have is the transform's own change.
	explained := func(name string) bool {
		_, inOld := oldPC[name]
		_, inNew := newPC[name]
		return inOld != inNew
	}
	for _, nt := range new.Transforms {
		ot := old.Transform(nt.UniqueName)
		if ot == nil {
			d.Changes = append(d.Changes, Change{Op: Added, Kind: KindTransform, Name: nt.UniqueName, What: ShortURN(nt.URN)})
			continue
		}
		var fields []FieldChange
		field := func(name, from, to string) {
			if from != to {
				fields = append(fields, FieldChange{Field: name, From: from, To: to})
			}
		}
		field("urn", ot.URN, nt.URN)
		field("parent", ot.Parent, nt.Parent)
		field("environment", ot.Environment, nt.Environment)
		// A composite's inputs and outputs are its parts'; the Go SDK names
		// them by PCollection id, which any insertion renumbers.
		if ot.Leaf() && nt.Leaf() {
			for _, dir := range []struct {
				name     string
				from, to map[string]string
			}{{"input", ot.Inputs, nt.Inputs}, {"output", ot.Outputs, nt.Outputs}} {
				tags := append(sortedKeys(dir.from), sortedKeys(dir.to)...)
				slices.Sort(tags)
				for _, tag := range slices.Compact(tags) {
					from, to := pcName(old, dir.from[tag]), pcName(new, dir.to[tag])
					if from != to && !explained(from) && !explained(to) {
						field(dir.name+" "+tag, from, to)
					}
				}
			}
			field("side inputs", strings.Join(ot.SideInputs, ","), strings.Join(nt.SideInputs, ","))
		}
		if len(fields) > 0 {
			d.Changes = append(d.Changes, Change{Op: Changed, Kind: KindTransform, Name: nt.UniqueName, Fields: fields})
		}
	}
	for _, ot := range old.Transforms {
		if new.Transform(ot.UniqueName) == nil {
			d.Changes = append(d.Changes, Change{Op: Removed, Kind: KindTransform, Name: ot.UniqueName, What: ShortURN(ot.URN)})
		}
	}
	for _, np := range new.PCollections {
		op, ok := oldPC[np.Name]
		if !ok {
			d.Changes = append(d.Changes, Change{Op: Added, Kind: KindPCollection, Name: np.Name, What: np.Coder})
			continue
		}
		var fields []FieldChange
		for _, f := range []FieldChange{
			{"coder", op.Coder, np.Coder},
			{"bounded", fmt.Sprint(op.Bounded), fmt.Sprint(np.Bounded)},
			{"windowing", op.Windowing, np.Windowing},
		} {
			if f.From != f.To {
				fields = append(fields, f)
			}
		}
		if len(fields) > 0 {
			d.Changes = append(d.Changes, Change{Op: Changed, Kind: KindPCollection, Name: np.Name, Fields: fields})
		}
	}
	for _, op := range old.PCollections {
		if _, ok := newPC[op.Name]; !ok {
			d.Changes = append(d.Changes, Change{Op: Removed, Kind: KindPCollection, Name: op.Name, What: op.Coder})
		}
	}
	return d
}

func pcByName(g *Graph) map[string]*PCollection {
	m := make(map[string]*PCollection, len(g.PCollections))
	for _, pc := range g.PCollections {
		m[pc.Name] = pc
	}
	return m
}

// pcName is the Name of the PCollection of id, "" for none.
func pcName(g *Graph, id string) string {
	if id == "" {
		return ""
	}
	if pc := g.PCollection(id); pc != nil {
		return pc.Name
	}
	return id
}

var opSigns = map[string]string{Added: "+", Removed: "-", Changed: "~"}

// WriteDiff writes d as text, a change a line (+ added, - removed,
// ~ changed, each changed property on a line below), or as JSON.
func WriteDiff(w io.Writer, d *Diff, f Format) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case Text, "":
	default:
		return fmt.Errorf("a diff is written as text or json, not %s", f)
	}
	for _, c := range d.Changes {
		line := opSigns[c.Op] + " " + c.Kind + " " + c.Name
		if c.What != "" {
			line += " (" + c.What + ")"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		for _, f := range c.Fields {
			if _, err := fmt.Fprintf(w, "    %s: %s → %s\n", f.Field, orNone(f.From), orNone(f.To)); err != nil {
				return err
			}
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

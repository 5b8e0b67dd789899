package graph

// view is the graph as drawn to a depth: transforms at the depth, or
// leaves above it, are nodes; composites above the depth are clusters of
// them; PCollections are edges between nodes.
type view struct {
	g     *Graph
	depth int
	// node is the node each leaf is drawn as: itself, or the composite at
	// the depth that holds it.
	node map[*Transform]*Transform
	// producer and consumers are the leaves that write and read each
	// PCollection, by id.
	producer  map[string]*Transform
	consumers map[string][]*Transform
	// side marks the (PCollection id, leaf) pairs read as side inputs.
	side map[[2]string]bool
}

// edge is a PCollection from one node to another.
type edge struct {
	from, to *Transform
	pc       *PCollection
	side     bool
}

// newView draws g to depth; 0 or less draws every transform.
func newView(g *Graph, depth int) *view {
	v := &view{g: g, depth: depth, node: map[*Transform]*Transform{},
		producer: map[string]*Transform{}, consumers: map[string][]*Transform{}, side: map[[2]string]bool{}}
	for _, t := range g.Leaves() {
		n := t
		if depth > 0 {
			for d := g.Depth(n); d > depth; d-- {
				n = g.Transform(n.Parent)
			}
		}
		v.node[t] = n
		for _, tag := range sortedKeys(t.Outputs) {
			if _, ok := v.producer[t.Outputs[tag]]; !ok {
				v.producer[t.Outputs[tag]] = t
			}
		}
		for _, tag := range sortedKeys(t.Inputs) {
			id := t.Inputs[tag]
			v.consumers[id] = append(v.consumers[id], t)
			for _, s := range t.SideInputs {
				if s == tag {
					v.side[[2]string{id, t.UniqueName}] = true
				}
			}
		}
	}
	return v
}

// visible reports whether t is drawn, as a node or a cluster.
func (v *view) visible(t *Transform) bool { return v.depth <= 0 || v.g.Depth(t) <= v.depth }

// isNode reports whether t is drawn as a node.
func (v *view) isNode(t *Transform) bool {
	return v.visible(t) && (t.Leaf() || v.depth > 0 && v.g.Depth(t) == v.depth)
}

// children are the parts of t that are drawn, in order; for nil, the roots.
func (v *view) children(t *Transform) []*Transform {
	names := v.g.Roots
	if t != nil {
		if v.isNode(t) {
			return nil
		}
		names = t.Subtransforms
	}
	var out []*Transform
	for _, n := range names {
		if c := v.g.Transform(n); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// draw walks the drawn tree in order: node for each node, open and close
// around each cluster's contents, each given how deep it is drawn (1 at
// the top).
func (v *view) draw(node, open, close func(t *Transform, level int)) {
	var walk func(t *Transform, level int)
	walk = func(t *Transform, level int) {
		if v.isNode(t) {
			node(t, level)
			return
		}
		open(t, level)
		for _, c := range v.children(t) {
			walk(c, level+1)
		}
		close(t, level)
	}
	for _, r := range v.children(nil) {
		walk(r, 1)
	}
}

// edges are the PCollections between nodes, in the graph's order; those
// within one node, and those no node reads, are left out.
func (v *view) edges() []edge {
	var out []edge
	for _, pc := range v.g.PCollections {
		p := v.producer[pc.ID]
		if p == nil {
			continue
		}
		seen := map[*Transform]bool{}
		for _, c := range v.consumers[pc.ID] {
			from, to := v.node[p], v.node[c]
			if from == to || seen[to] {
				continue
			}
			seen[to] = true
			out = append(out, edge{from: from, to: to, pc: pc, side: v.side[[2]string{pc.ID, c.UniqueName}]})
		}
	}
	return out
}

// boundary is what flows into and out of node n: the PCollections its
// leaves read that others write, and those they write that others read or
// no one does.
func (v *view) boundary(n *Transform) (in, out []*PCollection) {
	if n.Leaf() {
		for _, tag := range sortedKeys(n.Inputs) {
			in = append(in, v.g.PCollection(n.Inputs[tag]))
		}
		for _, tag := range sortedKeys(n.Outputs) {
			out = append(out, v.g.PCollection(n.Outputs[tag]))
		}
		return in, out
	}
	inside := func(t *Transform) bool { return t != nil && v.node[t] == n }
	for _, pc := range v.g.PCollections {
		p := v.producer[pc.ID]
		readOutside, readInside := len(v.consumers[pc.ID]) == 0, false
		for _, c := range v.consumers[pc.ID] {
			if inside(c) {
				readInside = true
			} else {
				readOutside = true
			}
		}
		switch {
		case inside(p) && readOutside:
			out = append(out, pc)
		case !inside(p) && readInside:
			in = append(in, pc)
		}
	}
	return in, out
}

// parts counts the leaves a collapsed composite holds.
func (v *view) parts(n *Transform) int {
	k := 0
	for leaf, node := range v.node {
		if node == n && leaf != n {
			k++
		}
	}
	return k
}

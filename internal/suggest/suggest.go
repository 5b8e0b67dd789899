// Package suggest finds the valid names nearest to a mistyped one, for
// "did you mean" hints.
package suggest

import "sort"

// Distance is the Levenshtein edit distance between a and b.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Nearest returns up to n candidates ordered by score (lower is nearer),
// ties broken by name; score defaults to Distance from s.
func Nearest(s string, candidates []string, n int, score func(s, c string) int) []string {
	if score == nil {
		score = Distance
	}
	type scored struct {
		name string
		d    int
	}
	all := make([]scored, 0, len(candidates))
	for _, c := range candidates {
		all = append(all, scored{c, score(s, c)})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].d != all[j].d {
			return all[i].d < all[j].d
		}
		return all[i].name < all[j].name
	})
	out := make([]string, 0, n)
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].name)
	}
	return out
}

// Close returns the candidate nearest to s when it is at most maxDist
// edits away: a likely typo of it.
func Close(s string, candidates []string, maxDist int) (string, bool) {
	near := Nearest(s, candidates, 1, nil)
	if len(near) == 1 && Distance(s, near[0]) <= maxDist {
		return near[0], true
	}
	return "", false
}

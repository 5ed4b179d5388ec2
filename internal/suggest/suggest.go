// Package suggest finds the nearest known name to a mistyped one, for "did you mean" hints in
// config keys and console filters. Hand-written because it is a dozen lines and no well-kept
// library offers just this without a dependency tree.
package suggest

// Distance is the Levenshtein edit distance between a and b (insertions, deletions and
// substitutions of single bytes).
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

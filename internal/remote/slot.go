package remote

import "github.com/tiercache/tiercache/internal/slot"

// slotGroups splits the positions 0..n-1 of n keys, the i-th being key(i)
// without prefix, into groups whose prefixed Redis keys share a hash slot,
// keeping the positions' order inside each group and the groups in order of
// first appearance.
func slotGroups(prefix string, n int, key func(int) string) [][]int {
	index := make(map[uint16]int)
	var groups [][]int
	for i := range n {
		sl := slot.Of(prefix + key(i))
		g, ok := index[sl]
		if !ok {
			g = len(groups)
			index[sl] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

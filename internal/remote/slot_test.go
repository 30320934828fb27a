package remote

import (
	"slices"
	"testing"

	"github.com/tiercache/tiercache/internal/slot"
)

func TestSlotGroups(t *testing.T) {
	keys := []string{"{a}1", "b", "{a}2", "c", "{a}3"}
	groups := slotGroups("ns:", len(keys), func(i int) string { return keys[i] })
	var flat []int
	for _, g := range groups {
		for _, i := range g {
			if slot.Of("ns:"+keys[i]) != slot.Of("ns:"+keys[g[0]]) {
				t.Fatalf("group %v mixes slots", g)
			}
		}
		flat = append(flat, g...)
	}
	if len(flat) != 5 || !slices.Equal(groups[0], []int{0, 2, 4}) {
		t.Fatalf("groups = %v", groups)
	}
}

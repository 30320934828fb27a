package remote

import (
	"slices"
	"testing"
)

func TestSlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 { // the CRC-16/XMODEM check value
		t.Fatalf("crc16 check value = %#x, want 0x31c3", got)
	}
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{
		"somekey":       11058,
		"foo{hash_tag}": 2515,
		"hash_tag":      2515,
		"{user1000}.a":  slot("user1000"),
		"foo{}{bar}":    slot("foo{}{bar}"), // empty first tag: the whole key
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
	if slot("foo{}{bar}") == slot("bar") {
		t.Error("an empty hash tag was taken as a tag")
	}
}

func TestSlotGroups(t *testing.T) {
	keys := []string{"{a}1", "b", "{a}2", "c", "{a}3"}
	groups := slotGroups("ns:", len(keys), func(i int) string { return keys[i] })
	var flat []int
	for _, g := range groups {
		for _, i := range g {
			if slot("ns:"+keys[i]) != slot("ns:"+keys[g[0]]) {
				t.Fatalf("group %v mixes slots", g)
			}
		}
		flat = append(flat, g...)
	}
	if len(flat) != 5 || !slices.Equal(groups[0], []int{0, 2, 4}) {
		t.Fatalf("groups = %v", groups)
	}
}

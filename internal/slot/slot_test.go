package slot

import "testing"

func TestOf(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{
		"123456789":     0x31c3 % Count, // the CRC16 check value
		"a":             15495,
		"b":             3300,
		"somekey":       11058,
		"foo{hash_tag}": 2515,
		"hash_tag":      2515,
		"{b}ch":         3300,
		"x{b}y{c}":      3300, // the first tag
		"":              0,
	} {
		if got := Of(key); got != want {
			t.Errorf("Of(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestTagPinsTheSlot(t *testing.T) {
	seen := make(map[string]bool, Count)
	for s := range uint16(Count) {
		tag := Tag(s)
		if got := Of("tiercache:invalidate:ns:{" + tag + "}"); got != s {
			t.Fatalf("Tag(%d) = %q, in slot %d", s, tag, got)
		}
		if seen[tag] {
			t.Fatalf("Tag(%d) = %q, given to another slot too", s, tag)
		}
		seen[tag] = true
		if len(tag) > 4 {
			t.Errorf("Tag(%d) = %q, longer than 4 bytes", s, tag)
		}
	}
}

func TestEmptyTagIsNoTag(t *testing.T) {
	if Of("foo{}{bar}") == Of("bar") {
		t.Error("an empty hash tag was taken as a tag")
	}
	if Of("{user1000}.a") != Of("user1000") {
		t.Error("a hash tag was not taken")
	}
}

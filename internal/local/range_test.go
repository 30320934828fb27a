package local

import (
	"fmt"
	"testing"
	"time"
)

// Range sees every live entry, whichever segment holds it, once, and no
// expired one; it stops when f returns false.
func TestRange(t *testing.T) {
	c, clk := newManual[string, int](t, Options[int]{Size: 200, Shards: 2})
	want := map[string]int{}
	for i := range 150 {
		k := fmt.Sprint("k", i)
		c.Set(k, i, forever)
		want[k] = i
	}
	for i := range 40 { // moved to protected
		mustGet(t, c, fmt.Sprint("k", i), i)
	}
	c.Set("short", -1, 5*time.Millisecond)
	clk.advance(5 * time.Millisecond)
	segs := map[uint32]bool{}
	for i := range c.shards {
		s := &c.shards[i]
		for _, l := range []*segment[string, int]{&s.window, &s.probation, &s.protected} {
			if l.len > 0 {
				segs[l.id] = true
			}
		}
	}
	if len(segs) != 3 {
		t.Fatalf("entries in %d segments, want all 3 in use for this test", len(segs))
	}

	got := map[string]int{}
	c.Range(func(k string, v int) bool {
		if _, dup := got[k]; dup {
			t.Errorf("Range gave %s twice", k)
		}
		got[k] = v
		return true
	})
	if len(got) != len(want) {
		t.Fatalf("Range gave %d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Range gave %s = %d, want %d", k, got[k], v)
		}
	}
	n := 0
	c.Range(func(string, int) bool { n++; return n < 7 })
	if n != 7 {
		t.Fatalf("Range went on for %d calls after f returned false at the 7th", n)
	}
	if st := c.Stats(); st.Hits != 40 {
		t.Fatalf("Hits = %d, want 40: Range counts none", st.Hits)
	}
}

package local

import (
	"strings"
	"testing"
	"time"
)

// interleavings returns every merge of a and b that keeps the order within
// each.
func interleavings(a, b []string) [][]string {
	if len(a) == 0 {
		return [][]string{append([]string(nil), b...)}
	}
	if len(b) == 0 {
		return [][]string{append([]string(nil), a...)}
	}
	var out [][]string
	for _, rest := range interleavings(a[1:], b) {
		out = append(out, append([]string{a[0]}, rest...))
	}
	for _, rest := range interleavings(a, b[1:]) {
		out = append(out, append([]string{b[0]}, rest...))
	}
	return out
}

// TestTwoWritersOfOneKey drives two writes of one key by this process, A and
// B, through every order of their steps: take a token (T), write the source
// (S), Commit (C). Whichever order the source applies them in and whichever
// finishes first, the cache must end holding the source's value or nothing.
func TestTwoWritersOfOneKey(t *testing.T) {
	const key = "k"
	orders := interleavings([]string{"TA", "SA", "CA"}, []string{"TB", "SB", "CB"})
	if len(orders) != 20 {
		t.Fatalf("%d interleavings, want 20", len(orders))
	}
	for _, filled := range []bool{false, true} {
		for _, order := range orders {
			name := strings.Join(order, " ")
			if filled {
				name = "filled/" + name
			}
			t.Run(name, func(t *testing.T) {
				c, clk := newManual[string, string](t, Options[string]{Size: 10, Shards: 1})
				source := "old"
				if filled {
					c.Set(key, source, forever)
				}
				toks := map[byte]Token{}
				for _, step := range order {
					w := step[1]
					v := strings.ToLower(string(w))
					switch step[0] {
					case 'T':
						toks[w] = c.Token(key)
					case 'S':
						source = v
					case 'C':
						c.Commit(key, v, time.Minute, toks[w])
					}
					clk.advance(Tick)
				}
				got, ok := c.Get(key)
				if ok && got != source {
					t.Fatalf("cache holds %q, source holds %q", got, source)
				}
				// Writes that did not overlap leave the last one cached.
				if name == "TA SA CA TB SB CB" && (!ok || got != "b") {
					t.Fatalf("sequential writes: cache holds %q (%v), want \"b\"", got, ok)
				}
			})
		}
	}
}

// TestFillRacingInvalidation drives a fill (take a token, read the source,
// SetIf) through every order against a write by another process (write the
// source, then Invalidate here). The cache must end holding the source's
// value or nothing.
func TestFillRacingInvalidation(t *testing.T) {
	const key = "k"
	for _, order := range interleavings([]string{"token", "read", "setif"}, []string{"write", "invalidate"}) {
		name := strings.Join(order, " ")
		t.Run(name, func(t *testing.T) {
			c, _ := newManual[string, string](t, Options[string]{Size: 10, Shards: 1})
			source := "old"
			var tok Token
			var read string
			for _, step := range order {
				switch step {
				case "token":
					tok = c.Token(key)
				case "read":
					read = source
				case "setif":
					c.SetIf(key, read, time.Minute, tok)
				case "write":
					source = "new"
				case "invalidate":
					c.Invalidate(key)
				}
			}
			if got, ok := c.Get(key); ok && got != source {
				t.Fatalf("cache holds %q, source holds %q", got, source)
			}
			if name == "write invalidate token read setif" {
				mustGet(t, c, key, "new")
			}
		})
	}
}

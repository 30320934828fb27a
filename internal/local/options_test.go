package local

import (
	"fmt"
	"testing"
)

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Size: -1}, "local: Size must be >= 0, got -1"},
		{Options{Size: -1, Shards: 3}, "local: Size must be >= 0, got -1"},
		{Options{Shards: 3}, "local: Shards must be a power of two, got 3"},
		{Options{Shards: -2}, "local: Shards must be a power of two, got -2"},
		{Options{Size: 100, Shards: 12}, "local: Shards must be a power of two, got 12"},
		{Options{Size: 10, Shards: 16}, "local: Shards must be <= Size (10), got 16"},
		{Options{Shards: 16384}, "local: Shards must be <= Size (10000), got 16384"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.opts), func(t *testing.T) {
			c, err := New[string, int](tc.opts)
			if err == nil {
				c.Close()
				t.Fatalf("New(%+v): no error, want %q", tc.opts, tc.want)
			}
			if c != nil {
				t.Errorf("New(%+v) returned a Cache with its error", tc.opts)
			}
			if err.Error() != tc.want {
				t.Errorf("New(%+v) error = %q, want %q", tc.opts, err, tc.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		opts       Options
		size, shds int
	}{
		{Options{}, DefaultSize, DefaultShards},
		{Options{Size: 1}, 1, 1},
		{Options{Size: 100}, 100, 1},
		{Options{Size: 128}, 128, 2},
		{Options{Size: 1000}, 1000, 8},
		{Options{Size: 1024}, 1024, 16},
		{Options{Size: 1 << 20}, 1 << 20, DefaultShards},
		{Options{Size: 100, Shards: 64}, 100, 64},
		{Options{Size: 4, Shards: 4}, 4, 4},
		{Options{Shards: 1}, DefaultSize, 1},
	} {
		t.Run(fmt.Sprintf("%+v", tc.opts), func(t *testing.T) {
			size, shards, err := tc.opts.resolve()
			if err != nil {
				t.Fatal(err)
			}
			if size != tc.size || shards != tc.shds {
				t.Fatalf("resolve(%+v) = Size %d, Shards %d; want %d, %d", tc.opts, size, shards, tc.size, tc.shds)
			}
			if tc.opts.Shards == 0 && shards > 1 && size/shards < minShardSize {
				t.Fatalf("chose %d shards of fewer than %d entries", shards, minShardSize)
			}
		})
	}

	// New applies them: the zero Options hold exactly DefaultSize entries.
	c, err := New[int, int](Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.shards) != DefaultShards {
		t.Errorf("New(Options{}) has %d shards, want %d", len(c.shards), DefaultShards)
	}
	for i := range 3 * DefaultSize {
		c.Set(i, i, forever)
	}
	if n := c.Len(); n != DefaultSize {
		t.Errorf("New(Options{}) holds %d entries after %d Sets, want %d", n, 3*DefaultSize, DefaultSize)
	}
}

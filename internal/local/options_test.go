package local

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/tiercache/tiercache/internal/field"
)

type opts = Options[int]

func costOne(int) int64 { return 1 }

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		opts opts
		want string
	}{
		{opts{Size: -1}, "local: Size must be >= 0, got -1"},
		{opts{Size: -1, Shards: 3}, "local: Size must be >= 0, got -1\nlocal: Shards must be a power of two, got 3"},
		{opts{Shards: 3}, "local: Shards must be a power of two, got 3"},
		{opts{Shards: -2}, "local: Shards must be a power of two, got -2"},
		{opts{Size: 100, Shards: 12}, "local: Shards must be a power of two, got 12"},
		{opts{Size: 10, Shards: 16}, "local: Shards must be <= Size (10), got 16"},
		{opts{Shards: 16384}, "local: Shards must be <= Size (10000), got 16384"},
		{opts{MaxBytes: -1, Sizer: costOne}, "local: MaxBytes must be >= 0, got -1"},
		{opts{MaxBytes: 1 << 20}, "local: Sizer is required with MaxBytes (1048576)"},
		{opts{MaxBytes: 8, Sizer: costOne, Shards: 16}, "local: Shards must be <= MaxBytes (8), got 16"},
		{opts{Policy: 2}, "local: Policy must be TinyLFU or LRU, got Policy(2)"},
		{opts{Policy: -1}, "local: Policy must be TinyLFU or LRU, got Policy(-1)"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.opts), func(t *testing.T) {
			if err := tc.opts.Validate(); err == nil || err.Error() != tc.want {
				t.Errorf("Validate(%+v) = %v, want %q", tc.opts, err, tc.want)
			}
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

// An invalid option's error names the field in Name, so that a package
// that builds Options from its own (tiered's LocalShards) can wrap it with
// its own field's name rather than check the rule a second time.
func TestOptionErrorNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		opts  opts
		field string
	}{
		{opts{Size: -1}, "Size"},
		{opts{MaxBytes: -1, Sizer: costOne}, "MaxBytes"},
		{opts{MaxBytes: 8}, "Sizer"},
		{opts{Shards: 3}, "Shards"},
		{opts{Size: 10, Shards: 16}, "Shards"},
		{opts{MaxBytes: 8, Sizer: costOne, Shards: 16}, "Shards"},
		{opts{Policy: 2}, "Policy"},
	} {
		err := tc.opts.Validate()
		var fe *field.Error
		if !errors.As(err, &fe) || fe.Name != tc.field {
			t.Errorf("Validate(%+v) = %#v, want a *field.Error of %s", tc.opts, err, tc.field)
			continue
		}
		if want := "local: " + fe.Name + " " + fe.Msg; err.Error() != want {
			t.Errorf("Validate(%+v) = %q, want %q", tc.opts, err, want)
		}
	}
	if err := (opts{Size: 10, Shards: 8}).Validate(); err != nil {
		t.Errorf("Validate of valid options = %v", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		opts   opts
		size   int
		bytes  int64
		shards int
	}{
		{opts{}, DefaultSize, math.MaxInt64, DefaultShards},
		{opts{Size: 1}, 1, math.MaxInt64, 1},
		{opts{Size: 100}, 100, math.MaxInt64, 1},
		{opts{Size: 128}, 128, math.MaxInt64, 2},
		{opts{Size: 1000}, 1000, math.MaxInt64, 8},
		{opts{Size: 1024}, 1024, math.MaxInt64, 16},
		{opts{Size: 1 << 20}, 1 << 20, math.MaxInt64, DefaultShards},
		{opts{Size: 100, Shards: 64}, 100, math.MaxInt64, 64},
		{opts{Size: 4, Shards: 4}, 4, math.MaxInt64, 4},
		{opts{Shards: 1}, DefaultSize, math.MaxInt64, 1},
		// MaxBytes without Size: no bound on entries.
		{opts{MaxBytes: 1 << 20, Sizer: costOne}, math.MaxInt, 1 << 20, DefaultShards},
		{opts{MaxBytes: 4, Sizer: costOne}, math.MaxInt, 4, 4},
		{opts{Size: 100, MaxBytes: 1 << 20, Sizer: costOne}, 100, 1 << 20, 1},
		// A Sizer alone counts bytes and bounds nothing.
		{opts{Sizer: costOne}, DefaultSize, math.MaxInt64, DefaultShards},
	} {
		t.Run(fmt.Sprintf("%+v", tc.opts), func(t *testing.T) {
			cfg, err := tc.opts.resolve()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.size != tc.size || cfg.bytes != tc.bytes || cfg.shards != tc.shards {
				t.Fatalf("resolve(%+v) = Size %d, MaxBytes %d, Shards %d; want %d, %d, %d",
					tc.opts, cfg.size, cfg.bytes, cfg.shards, tc.size, tc.bytes, tc.shards)
			}
			if tc.opts.Shards == 0 && cfg.shards > 1 && cfg.size/cfg.shards < minShardSize {
				t.Fatalf("chose %d shards of fewer than %d entries", cfg.shards, minShardSize)
			}
		})
	}

	// New applies them: the zero Options hold exactly DefaultSize entries.
	c, err := New[int, int](opts{})
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

// Each shard's bounds add up to the Cache's, and its segments' to the
// shard's.
func TestShardLimits(t *testing.T) {
	for _, tc := range []struct {
		n int
		b int64
		p Policy
	}{
		{1, math.MaxInt64, TinyLFU}, {2, math.MaxInt64, TinyLFU}, {625, math.MaxInt64, TinyLFU},
		{math.MaxInt, 1 << 16, TinyLFU}, {math.MaxInt, 5, TinyLFU}, {100, 1 << 20, TinyLFU},
		{625, math.MaxInt64, LRU}, {math.MaxInt, 1 << 16, LRU},
	} {
		l := newLimits(tc.n, tc.b, tc.p)
		if l.len != tc.n || l.bytes != tc.b {
			t.Errorf("newLimits(%d, %d, %v) = %+v: bounds changed", tc.n, tc.b, tc.p, l)
		}
		if l.winLen < 0 || l.protLen < 0 || l.winBytes < 0 || l.protBytes < 0 ||
			l.winLen > l.len || l.winBytes > l.bytes ||
			(tc.n != math.MaxInt && l.protLen > l.len-l.winLen) ||
			(tc.b != math.MaxInt64 && l.protBytes > l.bytes-l.winBytes) {
			t.Errorf("newLimits(%d, %d, %v) = %+v: segments outside the shard's bounds", tc.n, tc.b, tc.p, l)
		}
		if tc.p == TinyLFU && tc.n-l.winLen >= 2 && tc.b-l.winBytes >= 2 && (l.protLen < 1 || l.protBytes < 1) {
			t.Errorf("newLimits(%d, %d, %v) = %+v: no room in protected", tc.n, tc.b, tc.p, l)
		}
		if (tc.n == math.MaxInt) != (l.protLen == math.MaxInt) || (tc.b == math.MaxInt64) != (l.protBytes == math.MaxInt64) {
			t.Errorf("newLimits(%d, %d, %v) = %+v: protected bounded unlike the shard", tc.n, tc.b, tc.p, l)
		}
		if tc.p == TinyLFU && (l.winLen < 1 || (tc.n >= 100 && tc.n < math.MaxInt && l.winLen != tc.n/100)) {
			t.Errorf("newLimits(%d, %d, %v) = %+v: window not 1%% of the entries (at least 1)", tc.n, tc.b, tc.p, l)
		}
	}
}

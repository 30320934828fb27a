package tiered_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// A local tier bounded to 1 MiB that reads 4,000 values of 1 KiB holds at
// most 1.1 MiB (keys included) and about 1,000 entries: the bound is in
// bytes, not in entries.
func TestLocalMaxBytes(t *testing.T) {
	s := redistest.New(t)
	const value, n = 1 << 10, 4000
	c := newInstance(t, s, "c", tiered.Options[string]{LocalMaxBytes: 1 << 20})
	big := strings.Repeat("v", value)
	pipe := s.Client.Pipeline()
	for i := range n {
		pipe.Set(bg, fmt.Sprintf("%s:k%04d", s.Namespace, i), big, 0)
	}
	if _, err := pipe.Exec(bg); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if v, err := c.Get(bg, fmt.Sprintf("k%04d", i)); err != nil || len(v) != value {
			t.Fatalf("Get k%04d = %d bytes, %v", i, len(v), err)
		}
	}
	st := c.Stats()
	if st.LocalBytes > 1<<20+1<<20/10 || st.LocalBytes < 1<<20/2 {
		t.Errorf("LocalBytes = %d after reading %d values of %d bytes; want at most 1.1 MiB (and the tier in use)", st.LocalBytes, n, value)
	}
	if st.LocalEntries < 800 || st.LocalEntries > 1100 {
		t.Errorf("LocalEntries = %d; want about 1,000", st.LocalEntries)
	}
	t.Logf("%d entries, %d bytes", st.LocalEntries, st.LocalBytes)
}

// A Sizer decides what a value costs: here every value counts 64 KiB, so a
// tier of 1 MiB holds about 16 of them, whatever their encoding.
func TestSizer(t *testing.T) {
	s := redistest.New(t)
	c := newInstance(t, s, "c", tiered.Options[string]{LocalMaxBytes: 1 << 20, LocalShards: 1,
		Sizer: func(string) int { return 64 << 10 }})
	for i := range 100 {
		if err := c.Set(bg, fmt.Sprint(i), "small"); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.LocalEntries > 16 || st.LocalEntries < 8 || st.LocalBytes > 1<<20 {
		t.Errorf("stats %+v; want about 16 entries of 64 KiB", st)
	}
}

func TestLocalMaxBytesValidation(t *testing.T) {
	s := redistest.New(t)
	for name, opts := range map[string]tiered.Options[string]{
		"negative":           {LocalMaxBytes: -1},
		"without local tier": {LocalSize: -1, LocalMaxBytes: 1 << 20},
	} {
		if _, err := tiered.New(s.Client, opts); err == nil || !strings.Contains(err.Error(), "LocalMaxBytes") {
			t.Errorf("%s: err = %v; want one naming LocalMaxBytes", name, err)
		}
	}
}

package tiered_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// decimal is a Codec other than the default: ints as decimal text.
type decimal struct{}

func (decimal) Marshal(v int) ([]byte, error) { return strconv.AppendInt(nil, int64(v), 10), nil }
func (decimal) Unmarshal(b []byte) (int, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	return int(n), err
}

// Options.Codec is an extension point: what a Codec makes is what Redis
// holds, every instance with the same Codec reads it back, and bytes it
// refuses are an error naming the key, counted as a decode error.
func TestCustomCodec(t *testing.T) {
	s := redistest.New(t)
	opts := tiered.Options[int]{Codec: decimal{}}
	a := newInstance(t, s, "a", opts)
	b := newInstance(t, s, "b", opts)
	if err := a.Set(bg, "n", 1234); err != nil {
		t.Fatal(err)
	}
	if raw, err := s.Client.Get(bg, s.Namespace+":n").Result(); err != nil || raw != "1234" {
		t.Fatalf("Redis holds %q, %v; want the codec's bytes %q", raw, err, "1234")
	}
	if v, err := b.Get(bg, "n"); err != nil || v != 1234 {
		t.Fatalf("b.Get = %d, %v; want 1234", v, err)
	}
	if err := s.Client.Set(bg, s.Namespace+":bad", "twelve", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := b.Get(bg, "bad")
	if err == nil || !strings.Contains(err.Error(), `"bad"`) || !strings.Contains(err.Error(), "invalid syntax") {
		t.Fatalf("Get of bytes the codec refuses: %v; want an error naming the key and the codec's cause", err)
	}
	if n := b.Stats().DecodeErrors; n != 1 {
		t.Errorf("DecodeErrors = %d, want 1", n)
	}
}

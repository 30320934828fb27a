package invalidate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestChannel(t *testing.T) {
	if got, want := Channel("users"), "tiercache:invalidate:users"; got != want {
		t.Fatalf("Channel(users) = %q, want %q", got, want)
	}
}

func TestNewOriginIsRandom(t *testing.T) {
	a, b := NewOrigin(), NewOrigin()
	if a == (Origin{}) || b == (Origin{}) {
		t.Fatal("NewOrigin returned the zero Origin")
	}
	if a == b {
		t.Fatalf("two calls of NewOrigin returned %x", a)
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{Subscribed: "Subscribed", Broken: "Broken", Gap: "Gap", 0: "State(0)", 7: "State(7)"} {
		if got := st.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(st), got, want)
		}
	}
}

func equal(a, b Message) bool {
	return a.Origin == b.Origin && a.All == b.All && slices.Equal(a.Keys, b.Keys)
}

func TestRoundTrip(t *testing.T) {
	o := Origin{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	long := strings.Repeat("k", 300) // length needs a two-byte varint
	for name, m := range map[string]Message{
		"zero":    {},
		"one key": {Origin: o, Keys: []string{"user:1"}},
		"odd keys": {Origin: o, Keys: []string{
			"a:b:c", "", "\x00\xff\r\n", "ünïcode", long, "user:1", "user:1",
		}},
		"all": {Origin: o, All: true},
	} {
		t.Run(name, func(t *testing.T) {
			b := m.Append(nil)
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(Append(%+v)): %v", m, err)
			}
			if !equal(got, m) {
				t.Fatalf("round trip: got %+v, want %+v", got, m)
			}
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	m := Message{Keys: []string{"x"}}
	prefix := []byte("prefix")
	b := m.Append(slices.Clip(prefix))
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("Append dropped dst: %q", b)
	}
	if !bytes.Equal(b[len(prefix):], m.Append(nil)) {
		t.Fatal("Append to a non-empty dst encodes differently")
	}
}

func TestAppendAllDropsKeys(t *testing.T) {
	b := Message{All: true, Keys: []string{"a", "b"}}.Append(nil)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.All || len(got.Keys) != 0 {
		t.Fatalf("got %+v, want All with no keys", got)
	}
}

func TestAppendAllocatesOnce(t *testing.T) {
	m := Message{Keys: []string{"user:1", "user:2", strings.Repeat("k", 200)}}
	if n := testing.AllocsPerRun(100, func() { _ = m.Append(nil) }); n != 1 {
		t.Fatalf("Append(nil) made %v allocations, want 1", n)
	}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { _ = m.Append(buf) }); n != 0 {
		t.Fatalf("Append into a large enough buffer made %v allocations, want 0", n)
	}
}

// header is a valid version-1 header with the given flags and a zero origin.
func header(flags byte) []byte {
	return append([]byte{1, flags}, make([]byte, 16)...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodeRejects(t *testing.T) {
	good := Message{Keys: []string{"ab", "c"}}.Append(nil)
	for name, b := range map[string][]byte{
		"nil":                  nil,
		"empty":                {},
		"version only":         {1},
		"header only":          header(0),
		"short origin":         good[:10],
		"version 0":            cat([]byte{0}, good[1:]),
		"version 2":            cat([]byte{2}, good[1:]),
		"unknown flag":         cat(header(0x02), []byte{0}),
		"high flag":            cat(header(0x80), []byte{0}),
		"all with keys":        cat(header(flagAll), []byte{1, 1, 'a'}),
		"count past end":       cat(header(0), []byte{3, 1, 'a'}),
		"huge count":           cat(header(0), binary.AppendUvarint(nil, 1<<62)),
		"count overflows":      cat(header(0), bytes.Repeat([]byte{0xff}, 10), []byte{1}),
		"count cut short":      cat(header(0), []byte{0x80}),
		"count not shortest":   cat(header(0), []byte{0x81, 0x00, 1, 'a'}),
		"length past end":      cat(header(0), []byte{1, 5, 'a', 'b'}),
		"huge length":          cat(header(0), []byte{1}, binary.AppendUvarint(nil, 1<<63), []byte{'a'}),
		"length cut short":     cat(header(0), []byte{2, 1, 'a', 0x80}),
		"length not shortest":  cat(header(0), []byte{1, 0x80, 0x00}),
		"missing key":          cat(header(0), []byte{2, 1, 'a'}),
		"trailing byte":        cat(good, []byte{0}),
		"trailing after all":   cat(header(flagAll), []byte{0, 'x'}),
		"trailing after empty": cat(header(0), []byte{0, 0}),
	} {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(b)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%x) = %+v, %v; want an error wrapping ErrMalformed", b, m, err)
			}
			if !equal(m, Message{}) {
				t.Fatalf("Decode returned %+v with its error, want the zero Message", m)
			}
		})
	}
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	b := Message{Origin: NewOrigin(), Keys: []string{"user:1", "", strings.Repeat("x", 200)}}.Append(nil)
	for n := range len(b) {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode of the first %d of %d bytes: err = %v, want ErrMalformed", n, len(b), err)
		}
	}
}

func TestDecodeCopiesKeys(t *testing.T) {
	b := Message{Keys: []string{"abc"}}.Append(nil)
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[len(b)-3:], "xyz")
	if m.Keys[0] != "abc" {
		t.Fatalf("key changed with the input buffer: %q", m.Keys[0])
	}
}

func FuzzDecode(f *testing.F) {
	o := Origin{0xde, 0xad, 0xbe, 0xef}
	for _, m := range []Message{
		{},
		{Origin: o, All: true},
		{Origin: o, Keys: []string{"user:1"}},
		{Origin: o, Keys: []string{"a:b", "", "\x00\xff", strings.Repeat("z", 130)}},
	} {
		f.Add(m.Append(nil))
	}
	f.Add([]byte{})
	f.Add(cat(header(0), []byte{0x81, 0x00}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again := m.Append(nil)
		// The encoding is canonical: what decodes re-encodes to itself.
		if !bytes.Equal(again, b) {
			t.Fatalf("Decode(%x) = %+v re-encodes as %x", b, m, again)
		}
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoding of %+v does not decode: %v", m, err)
		}
		if !equal(m, m2) {
			t.Fatalf("re-encoding changed the message: %+v, then %+v", m, m2)
		}
	})
}

package invalidate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	return a.Origin == b.Origin && a.All == b.All && slices.Equal(a.Keys, b.Keys) && a.Sent.Equal(b.Sent) && a.Seq == b.Seq
}

// goldenOrigin is the Origin of the golden messages.
var goldenOrigin = Origin{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// goldenSentNanos is the send time of the golden version 2 messages:
// 2023-11-14T22:13:20.123456789Z, a nine-byte varint.
const goldenSentNanos = 1700000000123456789

// The golden encodings. Those of version 1 were produced by the encoder of
// the release before version 2 (commit 0308b55); those of version 2 were
// written by hand from the layout in Message.Append's doc.
const (
	goldenV1Keys = "01" + "00" + "00112233445566778899aabbccddeeff" + "03" + "06757365723a31" + "00" + "03613a62"
	goldenV1All  = "01" + "01" + "00112233445566778899aabbccddeeff" + "00"
	goldenV2Keys = "02" + "00" + "00112233445566778899aabbccddeeff" + "959a97ece39fe7cb17" + "03" + "06757365723a31" + "00" + "03613a62"
	goldenV2All  = "02" + "01" + "00112233445566778899aabbccddeeff" + "959a97ece39fe7cb17" + "00"
)

// unhexMust decodes a hex constant of the tests.
func unhexMust(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// goldenMessages are the messages of the golden encodings.
func goldenMessages() map[string]Message {
	keys := []string{"user:1", "", "a:b"}
	sent := time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC)
	return map[string]Message{
		goldenV1Keys: {Origin: goldenOrigin, Keys: keys},
		goldenV1All:  {Origin: goldenOrigin, All: true},
		goldenV2Keys: {Origin: goldenOrigin, Keys: keys, Sent: sent},
		goldenV2All:  {Origin: goldenOrigin, All: true, Sent: sent},
	}
}

// Both versions decode from, and encode to, their golden bytes: version 1
// exactly as the release before version 2 wrote it.
func TestGolden(t *testing.T) {
	for golden, m := range goldenMessages() {
		b := unhexMust(golden)
		if got := m.Append(nil); !bytes.Equal(got, b) {
			t.Errorf("Append(%+v) = %x, want %s", m, got, golden)
		}
		got, err := Decode(b)
		if err != nil {
			t.Errorf("Decode(%s): %v", golden, err)
			continue
		}
		if !equal(got, m) {
			t.Errorf("Decode(%s) = %+v, want %+v", golden, got, m)
		}
		// Decode gives exactly time.Unix(0, n): no monotonic reading, no
		// location but Local (== compares all three).
		if want := time.Unix(0, goldenSentNanos); !m.Sent.IsZero() && got.Sent != want {
			t.Errorf("Decode(%s).Sent = %#v, want time.Unix(0, %d)", golden, got.Sent, int64(goldenSentNanos))
		}
		if m.Sent.IsZero() && got.Sent != (time.Time{}) {
			t.Errorf("Decode(%s).Sent = %v, want the zero Time", golden, got.Sent)
		}
	}
}

// A send time that nanoseconds since the epoch cannot carry (at or before
// the epoch, after 2262) is written as unknown: version 1.
func TestSentOutOfRangeIsUnknown(t *testing.T) {
	m := Message{Origin: goldenOrigin, Keys: []string{"user:1", "", "a:b"}}
	want := unhexMust(goldenV1Keys)
	for _, sent := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, -1),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, math.MaxInt64).Add(time.Nanosecond),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		m.Sent = sent
		if got := m.Append(nil); !bytes.Equal(got, want) {
			t.Errorf("Append with Sent %v = %x, want the version 1 bytes %x", sent, got, want)
		}
	}
}

// Decode's Sent carries no monotonic reading, even if the Sent encoded did.
func TestDecodeSentIsWallClock(t *testing.T) {
	now := time.Now() // with a monotonic reading
	got, err := Decode(Message{Sent: now}.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(0, now.UnixNano()); got.Sent != want {
		t.Fatalf("Decode(...).Sent = %#v, want %#v", got.Sent, want)
	}
}

func TestRoundTrip(t *testing.T) {
	o := Origin{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	long := strings.Repeat("k", 300) // length needs a two-byte varint
	odd := []string{"a:b:c", "", "\x00\xff\r\n", "ünïcode", long, "user:1", "user:1"}
	for name, m := range map[string]Message{
		"zero":            {},
		"one key":         {Origin: o, Keys: []string{"user:1"}},
		"odd keys":        {Origin: o, Keys: odd},
		"all":             {Origin: o, All: true},
		"empty key":       {Origin: o, Keys: []string{""}},
		"v2 zero":         {Sent: time.Unix(0, 1)},
		"v2 one key":      {Origin: o, Keys: []string{"user:1"}, Sent: time.Unix(1700000000, 1)},
		"v2 odd keys":     {Origin: o, Keys: odd, Sent: time.Date(2025, 6, 1, 12, 0, 0, 999999999, time.UTC)},
		"v2 all":          {Origin: o, All: true, Sent: time.Unix(1, 0)},
		"v2 empty key":    {Origin: o, Keys: []string{""}, Sent: time.Unix(0, 127)},
		"v2 latest":       {Origin: o, Keys: []string{"k"}, Sent: time.Unix(0, math.MaxInt64)},
		"v2 nanoseconds":  {Origin: o, Keys: []string{"k"}, Sent: time.Unix(1700000000, 123456789)},
		"v2 other places": {Origin: o, Keys: []string{"k"}, Sent: time.Date(2024, 2, 29, 23, 59, 59, 7, time.FixedZone("X", -7*3600))},
	} {
		t.Run(name, func(t *testing.T) {
			b := m.Append(nil)
			want := byte(1)
			if !m.Sent.IsZero() {
				want = 2
			}
			if b[0] != want {
				t.Errorf("Append(%+v) wrote version %d, want %d", m, b[0], want)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(Append(%+v)): %v", m, err)
			}
			if !equal(got, m) { // Sent to the nanosecond
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
	v1 := Message{Keys: []string{"user:1", "user:2", strings.Repeat("k", 200)}}
	v2 := v1
	v2.Sent = time.Now()
	for name, m := range map[string]Message{"v1": v1, "v2": v2} {
		if n := testing.AllocsPerRun(100, func() { _ = m.Append(nil) }); n != 1 {
			t.Errorf("%s: Append(nil) made %v allocations, want 1", name, n)
		}
		buf := make([]byte, 0, 512)
		if n := testing.AllocsPerRun(100, func() { _ = m.Append(buf) }); n != 0 {
			t.Errorf("%s: Append into a large enough buffer made %v allocations, want 0", name, n)
		}
		// The size is computed exactly, not just large enough.
		if b := m.Append(nil); len(b) != cap(b) {
			t.Errorf("%s: Append(nil) returned %d bytes in a buffer of %d", name, len(b), cap(b))
		}
	}
}

// header is a valid version-1 header with the given flags and a zero origin.
func header(flags byte) []byte {
	return append([]byte{1, flags}, make([]byte, 16)...)
}

// header2 is a valid version-2 header with the given flags and a zero
// origin, up to the send time.
func header2(flags byte) []byte {
	return append([]byte{2, flags}, make([]byte, 16)...)
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
		"version 3":            cat([]byte{3}, good[1:]),
		"version 255":          cat([]byte{255}, good[1:]),
		"v1 body as version 2": cat([]byte{2}, good[1:]),
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

		"v2 header only":          header2(0),
		"v2 sent 0":               cat(header2(0), []byte{0, 0}),
		"v2 sent 0 all":           cat(header2(flagAll), []byte{0, 0}),
		"v2 sent not shortest":    cat(header2(0), []byte{0x81, 0x00, 0}),
		"v2 sent 0 not shortest":  cat(header2(0), []byte{0x80, 0x00, 0}),
		"v2 sent cut short":       cat(header2(0), []byte{0x81}),
		"v2 sent then nothing":    cat(header2(0), []byte{1}),
		"v2 sent past int64":      cat(header2(0), binary.AppendUvarint(nil, 1<<63), []byte{0}),
		"v2 sent max uint64":      cat(header2(0), binary.AppendUvarint(nil, math.MaxUint64), []byte{0}),
		"v2 sent overflows":       cat(header2(0), bytes.Repeat([]byte{0xff}, 10), []byte{1, 0}),
		"v2 unknown flag":         cat(header2(0x02), []byte{1, 0}),
		"v2 all with keys":        cat(header2(flagAll), []byte{1, 1, 1, 'a'}),
		"v2 count past end":       cat(header2(0), []byte{1, 3, 1, 'a'}),
		"v2 count not shortest":   cat(header2(0), []byte{1, 0x81, 0x00, 1, 'a'}),
		"v2 length not shortest":  cat(header2(0), []byte{1, 1, 0x80, 0x00}),
		"v2 trailing byte":        cat(unhexMust(goldenV2Keys), []byte{0}),
		"v2 trailing after all":   cat(unhexMust(goldenV2All), []byte{'x'}),
		"v2 trailing after empty": cat(header2(0), []byte{1, 0, 0}),
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
	m := Message{Origin: NewOrigin(), Keys: []string{"user:1", "", strings.Repeat("x", 200)}}
	for _, sent := range []time.Time{{}, time.Now()} {
		m.Sent = sent
		b := m.Append(nil)
		for n := range len(b) {
			if _, err := Decode(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode of the first %d of %d bytes: err = %v, want ErrMalformed", n, len(b), err)
			}
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

// FuzzDecode checks that Decode never panics, that what it accepts
// re-encodes to the very same bytes, and that it reads everything the
// release before version 2 read (decodeV1Only), and nothing more of version
// 1.
func FuzzDecode(f *testing.F) {
	o := Origin{0xde, 0xad, 0xbe, 0xef}
	for _, sent := range []time.Time{{}, time.Unix(0, 1), time.Unix(1700000000, 123456789), time.Unix(0, math.MaxInt64)} {
		for _, m := range []Message{
			{},
			{Origin: o, All: true},
			{Origin: o, Keys: []string{"user:1"}},
			{Origin: o, Keys: []string{"a:b", "", "\x00\xff", strings.Repeat("z", 130)}},
		} {
			m.Sent = sent
			f.Add(m.Append(nil))
		}
	}
	for _, seq := range []uint64{0, 1, 10, math.MaxInt64} {
		f.Add(Message{Origin: o, Keys: []string{"k"}, Sent: time.Unix(0, 5), Seq: seq}.AppendVersion(nil, 3))
		f.Add(Message{Origin: o, All: true, Seq: seq}.AppendVersion(nil, 3))
	}
	f.Add([]byte{})
	f.Add(cat(header(0), []byte{0x81, 0x00}))
	f.Add(cat(header2(0), []byte{0, 0}))
	f.Add(cat(header2(0), []byte{0x81, 0x00, 0}))
	f.Add(cat(header2(0), binary.AppendUvarint(nil, 1<<63), []byte{0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		old, oldErr := decodeV1Only(b)
		if oldErr == nil && (err != nil || !equal(m, old)) {
			t.Fatalf("the previous release decodes %x as %+v; this one: %+v, %v", b, old, m, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if (m.Version == 1) != (oldErr == nil) {
			t.Fatalf("Decode(%x) = %+v, and the previous release's decoder says %v", b, m, oldErr)
		}
		again := m.AppendVersion(nil, m.Version)
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

func BenchmarkAppend(b *testing.B) {
	m := Message{Origin: NewOrigin(), Keys: []string{"user:1", "user:2", "order:12345"}}
	for _, v := range []struct {
		name string
		sent time.Time
	}{{"v1", time.Time{}}, {"v2", time.Now()}} {
		m.Sent = v.sent
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 128)
			for b.Loop() {
				buf = m.Append(buf[:0])
			}
		})
		b.Run(v.name+"/nil", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = m.Append(nil)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	m := Message{Origin: NewOrigin(), Keys: []string{"user:1", "user:2", "order:12345"}}
	for _, v := range []struct {
		name string
		sent time.Time
	}{{"v1", time.Time{}}, {"v2", time.Now()}} {
		m.Sent = v.sent
		enc := m.Append(nil)
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Version 3: a send time that may be unknown, and the position the write
// script appends, in decimal, after the keys; canonical both ways.
func TestVersion3(t *testing.T) {
	body := Message{Origin: goldenOrigin, Keys: []string{"user:1", "", "a:b"}, Sent: time.Unix(0, goldenSentNanos)}
	for _, seq := range []uint64{0, 1, 42, math.MaxInt64} {
		m := body
		m.Seq = seq
		b := m.AppendVersion(nil, 3)
		if len(b) != cap(b) {
			t.Errorf("seq %d: AppendVersion(3) returned %d bytes in a buffer of %d", seq, len(b), cap(b))
		}
		// The script appends the position to the bytes of the message with Seq 0.
		if want := append(body.AppendVersion(nil, 3), strconv.FormatUint(seq, 10)...); seq != 0 && !bytes.Equal(b, want) {
			t.Errorf("seq %d: %x, want the body and the decimal position %x", seq, b, want)
		}
		got, err := Decode(b)
		if err != nil || !equal(got, m) || got.Version != 3 {
			t.Errorf("seq %d: Decode = %+v, %v; want %+v", seq, got, err, m)
		}
	}
	unknown, err := Decode(Message{Keys: []string{"k"}}.AppendVersion(nil, 3))
	if err != nil || !unknown.Sent.IsZero() {
		t.Errorf("version 3 with no send time: %+v, %v", unknown, err)
	}
	good := body.AppendVersion(nil, 3)
	for name, b := range map[string][]byte{
		"leading zero": append(slices.Clone(good), "012"...),
		"zero":         append(slices.Clone(good), "0"...),
		"not decimal":  append(slices.Clone(good), "1a"...),
		"too long":     append(slices.Clone(good), "12345678901234567890"...),
		"past 2^63-1":  append(slices.Clone(good), "9223372036854775808"...),
		"sign":         append(slices.Clone(good), "+1"...),
	} {
		if m, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %+v, %v; want ErrMalformed", name, m, err)
		}
	}
}

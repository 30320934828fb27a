package invalidate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
)

// A rolling upgrade from the release before version 2 (commit 0308b55),
// both ways. appendV1Only and decodeV1Only are that release's encoder and
// decoder, copied with their constants inlined so that later changes here
// cannot change them.

// appendV1Only is Message.Append of the release before version 2.
func appendV1Only(m Message, dst []byte) []byte {
	var flags byte
	keys := m.Keys
	if m.All {
		flags |= 1
		keys = nil
	}
	dst = append(dst, 1, flags)
	dst = append(dst, m.Origin[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
	}
	return dst
}

// decodeV1Only is Decode of the release before version 2.
func decodeV1Only(b []byte) (Message, error) {
	const headerLen = 18
	var m Message
	if len(b) < headerLen+1 {
		return Message{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformed, len(b), headerLen+1)
	}
	if b[0] != 1 {
		return Message{}, fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	if f := b[1]; f&^1 != 0 {
		return Message{}, fmt.Errorf("%w: unknown flags %#02x", ErrMalformed, f)
	}
	m.All = b[1]&1 != 0
	copy(m.Origin[:], b[2:headerLen])
	rest := b[headerLen:]

	count, rest, err := uvarintV1Only(rest, "key count")
	if err != nil {
		return Message{}, err
	}
	if m.All && count != 0 {
		return Message{}, fmt.Errorf("%w: All with %d keys", ErrMalformed, count)
	}
	if count > uint64(len(rest)) {
		return Message{}, fmt.Errorf("%w: %d keys in %d bytes", ErrMalformed, count, len(rest))
	}
	if count > 0 {
		m.Keys = make([]string, 0, int(count))
	}
	for i := range count {
		var n uint64
		n, rest, err = uvarintV1Only(rest, "key length")
		if err != nil {
			return Message{}, err
		}
		if n > uint64(len(rest)) {
			return Message{}, fmt.Errorf("%w: key %d is %d bytes, %d left", ErrMalformed, i, n, len(rest))
		}
		m.Keys = append(m.Keys, string(rest[:n]))
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return Message{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return m, nil
}

// uvarintV1Only is uvarint of the release before version 2.
func uvarintV1Only(b []byte, what string) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, fmt.Errorf("%w: %s cut short", ErrMalformed, what)
	case n < 0:
		return 0, nil, fmt.Errorf("%w: %s overflows 64 bits", ErrMalformed, what)
	case n > 1 && b[n-1] == 0:
		return 0, nil, fmt.Errorf("%w: %s not in shortest form", ErrMalformed, what)
	}
	return v, b[n:], nil
}

// upgradeMessages are messages of every shape, with Sent unknown.
func upgradeMessages() []Message {
	o := Origin{9, 8, 7, 6, 5, 4, 3, 2, 1}
	return []Message{
		{},
		{Origin: o},
		{Origin: o, All: true},
		{Origin: o, All: true, Keys: []string{"ignored"}},
		{Origin: o, Keys: []string{""}},
		{Origin: o, Keys: []string{"user:1", "", "a:b:c", "\x00\xff", strings.Repeat("k", 300)}},
	}
}

// This release reads what the previous one writes: its golden bytes and
// every message its encoder produces, with Sent unknown. And with Sent
// unknown, this release writes the very bytes the previous one wrote.
func TestUpgradeReadsPrevious(t *testing.T) {
	for _, golden := range []string{goldenV1Keys, goldenV1All} {
		b := unhexMust(golden)
		old, err := decodeV1Only(b)
		if err != nil {
			t.Fatalf("the previous release's decoder rejects its own golden bytes %s: %v", golden, err)
		}
		if !bytes.Equal(appendV1Only(old, nil), b) {
			t.Fatalf("the previous release's encoder does not write its golden bytes %s", golden)
		}
	}
	for _, m := range upgradeMessages() {
		prev := appendV1Only(m, nil)
		got, err := Decode(prev)
		if err != nil {
			t.Fatalf("Decode of %x, written by the previous release: %v", prev, err)
		}
		want, _ := decodeV1Only(prev)
		if !equal(got, want) || !got.Sent.IsZero() {
			t.Fatalf("Decode(%x) = %+v, the previous release decoded %+v", prev, got, want)
		}
		if b := m.Append(nil); !bytes.Equal(b, prev) {
			t.Fatalf("Append(%+v) with Sent unknown = %x, the previous release wrote %x", m, b, prev)
		}
	}
}

// A release that reads only version 1 reads every message this release
// writes with Sent unknown, and rejects every one with Sent set: its
// Subscriber reports that as a Gap, and its owner purges the local tier for
// every such message. That is why the tiered package can keep writing
// version 1 while such a release still runs.
func TestUpgradePreviousReadsThis(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	for _, m := range upgradeMessages() {
		b := m.Append(nil)
		got, err := decodeV1Only(b)
		if err != nil {
			t.Fatalf("the previous release cannot decode %+v written with Sent unknown (%x): %v", m, b, err)
		}
		want, _ := Decode(b)
		if !equal(got, want) {
			t.Fatalf("the previous release decodes %x as %+v, this one as %+v", b, got, want)
		}

		m.Sent = sent
		b = m.Append(nil)
		if got, err := decodeV1Only(b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "unknown version 2") {
			t.Fatalf("the previous release decodes %x, with Sent set, as %+v, %v; want unknown version 2", b, got, err)
		}
	}
	if _, err := decodeV1Only(unhexMust(goldenV2Keys)); err == nil {
		t.Fatal("the previous release decodes the golden version 2 bytes")
	}
}

// A version 2 message published on a channel reaches OnMessage with its
// send time.
func TestSubscriberDeliversSent(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	start(t, s.NewClient(""), r.options(ch))
	r.nextStateOn(t, Subscribed, ch)

	publish(t, s.Client, ch, unhexMust(goldenV2Keys))
	got := r.nextDelivery(t)
	want := goldenMessages()[goldenV2Keys]
	if got.channel != ch || !equal(got.msg, want) || got.msg.Sent != time.Unix(0, goldenSentNanos) {
		t.Fatalf("delivered %+v on %q, want %+v on %q", got.msg, got.channel, want, ch)
	}
	publish(t, s.Client, ch, unhexMust(goldenV1Keys))
	if got := r.nextMessage(t); !got.Sent.IsZero() || len(got.Keys) != 3 {
		t.Fatalf("delivered %+v for the version 1 bytes, want 3 keys and no Sent", got)
	}
	r.noState(t, 50*time.Millisecond)
}

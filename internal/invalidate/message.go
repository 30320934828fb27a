package invalidate

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
)

// Origin identifies one cache instance, so that an instance can recognise
// (and ignore) its own messages.
type Origin [16]byte

// NewOrigin returns a random Origin (16 bytes from crypto/rand).
func NewOrigin() Origin {
	var o Origin
	_, _ = rand.Read(o[:]) // never fails since Go 1.24
	return o
}

// Message tells instances to drop keys from their local tier. The zero
// Message is valid and drops nothing.
type Message struct {
	// Origin is the instance that sent the message.
	Origin Origin
	// All asks to purge every key; Keys is then not encoded.
	All bool
	// Keys are the keys to drop. Any bytes are allowed, including ':' and
	// the empty string.
	Keys []string
	// Sent is the publisher's wall-clock time when it built the message,
	// so that a receiver can measure the lag from publish to apply; the
	// zero Time means unknown. A lag measured on a host other than the
	// publisher's includes the skew between the two hosts' clocks (and may
	// come out negative). The wire carries Sent to the nanosecond, without
	// its monotonic reading or location: Decode returns time.Unix(0, n). A
	// time at or before the Unix epoch, or after 2262 (beyond int64
	// nanoseconds), is written as unknown.
	Sent time.Time
	// Seq is the message's position in its channel's log (version 3): the
	// write script that publishes a version 3 message appends it, and a
	// receiver that misses messages reads them back from the log by their
	// positions. 0 means none (a message published without the script).
	Seq uint64
	// Version is the wire version Decode read (1, 2 or 3); Append ignores
	// it (see AppendVersion).
	Version int
	// Tracked marks a message that no writer sent: Redis reported, through
	// server-assisted tracking, that the keys changed (Options.Tracking).
	// It has no Origin and is never encoded.
	Tracked bool
}

// ErrMalformed is wrapped by every error Decode returns.
var ErrMalformed = errors.New("invalidate: malformed message")

// The wire format; see Message.Append.
const (
	version1  = 1 // no send time
	version2  = 2 // a send time after the Origin
	version3  = 3 // a send time that may be 0, and a position after the keys
	flagAll   = 1 << 0
	headerLen = 2 + len(Origin{})

	// Version is the newest wire version this release reads and writes.
	Version = version3
	// maxSeqDigits bounds the decimal position of version 3: 2^63-1 has 19.
	maxSeqDigits = 19
)

// The send times that the wire carries: (epoch, latestSent].
var (
	epoch      = time.Unix(0, 0)
	latestSent = time.Unix(0, math.MaxInt64)
)

// sentNanos returns t as nanoseconds since the Unix epoch, or 0 if the wire
// cannot carry it (the zero Time among them): then it is sent as unknown.
func sentNanos(t time.Time) uint64 {
	if !t.After(epoch) || t.After(latestSent) {
		return 0
	}
	return uint64(t.UnixNano())
}

// Append appends the encoding of m to dst and returns the extended slice.
// When m.All is set, m.Keys is ignored. It allocates at most once, and not
// at all if dst has room.
//
// The encoding has two versions; integers are unsigned varints of
// encoding/binary, in their shortest form. Version 1, written when m.Sent
// is unknown (see [Message.Sent]):
//
//	byte 0       version, 1
//	byte 1       flags: bit 0 = All; other bits must be 0
//	bytes 2..17  Origin
//	uvarint      number of keys N (0 when All is set)
//	N times      uvarint key length L, then L bytes of key
//
// Version 2, written when m.Sent is known, adds the send time after the
// Origin:
//
//	byte 0       version, 2
//	byte 1       flags, as in version 1
//	bytes 2..17  Origin
//	uvarint      Sent, in nanoseconds since the Unix epoch: at least 1,
//	             at most 2^63-1
//	uvarint      number of keys N, then the keys, as in version 1
//
// Nothing follows the last key. The encoding is canonical: a message has
// exactly one encoding, Decode accepts nothing else, and a decoded message
// re-encodes to the very bytes it came from (so a version 2 with a send
// time of 0 is malformed: that message is version 1). A later version
// changes byte 0; Decode rejects versions it does not know.
//
// Across a rolling upgrade: a Subscriber treats a version it does not know
// as a gap ([Gap]; its owner purges its local tier), which is correct but
// costs a purge per message. This release decodes both versions, and
// writes version 2 only for a message whose Sent is set; with Sent unknown
// it writes the very bytes of the releases before it, which decode only
// version 1 and take every version 2 message for a Gap. So while such a
// release still runs, publishers must leave Sent unknown: the tiered
// package has an option to keep writing version 1 during such an upgrade.
func (m Message) Append(dst []byte) []byte {
	if sentNanos(m.Sent) != 0 {
		return m.AppendVersion(dst, version2)
	}
	return m.AppendVersion(dst, version1)
}

// AppendVersion appends the encoding of m in wire version v (1, 2 or 3) to
// dst. Version 1 drops Sent, versions 1 and 2 drop Seq. Version 3 is
// version 2 with a send time that may be 0 (unknown), followed, after the
// last key, by Seq in decimal ASCII (no sign, no leading zero) when Seq is
// not 0, and by nothing when it is:
//
//	byte 0       version, 3
//	byte 1       flags, as in version 1
//	bytes 2..17  Origin
//	uvarint      Sent, in nanoseconds since the Unix epoch, or 0
//	uvarint      number of keys N, then the keys, as in version 1
//	1-19 bytes   Seq, "1" to "9223372036854775807", or nothing
//
// The write scripts append the position themselves: they publish the
// bytes of m (with Seq 0) followed by the decimal position the log gave
// the message. An unknown v encodes as version 1.
func (m Message) AppendVersion(dst []byte, v int) []byte {
	var flags byte
	keys := m.Keys
	if m.All {
		flags |= flagAll
		keys = nil
	}
	version := byte(version1)
	sent := sentNanos(m.Sent)
	size := headerLen + uvarintLen(uint64(len(keys)))
	switch {
	case v == version3:
		version = version3
		size += uvarintLen(sent) + seqLen(m.Seq)
	case v == version2 && sent != 0:
		version = version2
		size += uvarintLen(sent)
	}
	for _, k := range keys {
		size += uvarintLen(uint64(len(k))) + len(k)
	}
	dst = grow(dst, size)
	dst = append(dst, version, flags)
	dst = append(dst, m.Origin[:]...)
	if version != version1 {
		dst = binary.AppendUvarint(dst, sent)
	}
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
	}
	if version == version3 && m.Seq != 0 && m.Seq <= math.MaxInt64 {
		dst = strconv.AppendUint(dst, m.Seq, 10)
	}
	return dst
}

// seqLen is the length of the decimal position of version 3: nothing for 0.
func seqLen(seq uint64) int {
	if seq == 0 || seq > math.MaxInt64 {
		return 0
	}
	n := 1
	for ; seq >= 10; seq /= 10 {
		n++
	}
	return n
}

// uvarintLen is the length of the encoding of v by binary.AppendUvarint.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// grow makes room for n more bytes in dst, so Append allocates at most once.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// Decode parses a message produced by Append, of either version. It
// returns an error wrapping ErrMalformed for any input that is not exactly
// one canonical encoding, and never panics. Its allocations are bounded by
// a small multiple of len(b).
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) < headerLen+1 {
		return Message{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformed, len(b), headerLen+1)
	}
	if v := b[0]; v != version1 && v != version2 && v != version3 {
		return Message{}, fmt.Errorf("%w: unknown version %d", ErrMalformed, v)
	}
	if f := b[1]; f&^flagAll != 0 {
		return Message{}, fmt.Errorf("%w: unknown flags %#02x", ErrMalformed, f)
	}
	m.All = b[1]&flagAll != 0
	m.Version = int(b[0])
	copy(m.Origin[:], b[2:headerLen])
	rest := b[headerLen:]

	var err error
	if b[0] != version1 {
		var sent uint64
		sent, rest, err = uvarint(rest, "send time")
		if err != nil {
			return Message{}, err
		}
		// Version 2 writes 0 as version 1; a time past 2^63-1 is never written.
		if (sent == 0 && b[0] == version2) || sent > math.MaxInt64 {
			return Message{}, fmt.Errorf("%w: send time %d out of range", ErrMalformed, sent)
		}
		if sent != 0 {
			m.Sent = time.Unix(0, int64(sent))
		}
	}

	count, rest, err := uvarint(rest, "key count")
	if err != nil {
		return Message{}, err
	}
	if m.All && count != 0 {
		return Message{}, fmt.Errorf("%w: All with %d keys", ErrMalformed, count)
	}
	// Every key takes at least one byte (its length), so a count larger than
	// what is left is a lie; checking it bounds the allocation below.
	if count > uint64(len(rest)) {
		return Message{}, fmt.Errorf("%w: %d keys in %d bytes", ErrMalformed, count, len(rest))
	}
	if count > 0 {
		m.Keys = make([]string, 0, int(count))
	}
	for i := range count {
		var n uint64
		n, rest, err = uvarint(rest, "key length")
		if err != nil {
			return Message{}, err
		}
		if n > uint64(len(rest)) {
			return Message{}, fmt.Errorf("%w: key %d is %d bytes, %d left", ErrMalformed, i, n, len(rest))
		}
		m.Keys = append(m.Keys, string(rest[:n]))
		rest = rest[n:]
	}
	if b[0] == version3 && len(rest) > 0 {
		if m.Seq, err = parsePosition(rest); err != nil {
			return Message{}, err
		}
		rest = nil
	}
	if len(rest) != 0 {
		return Message{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return m, nil
}

// parsePosition parses the decimal position that ends a version 3 message: 1 to
// 2^63-1, with no sign and no leading zero.
func parsePosition(b []byte) (uint64, error) {
	if len(b) > maxSeqDigits || b[0] == '0' {
		return 0, fmt.Errorf("%w: position %q out of range", ErrMalformed, b)
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: position %q is not decimal", ErrMalformed, b)
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("%w: position %q out of range", ErrMalformed, b)
	}
	return n, nil
}

// uvarint reads one shortest-form unsigned varint from the front of b.
func uvarint(b []byte, what string) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, fmt.Errorf("%w: %s cut short", ErrMalformed, what)
	case n < 0:
		return 0, nil, fmt.Errorf("%w: %s overflows 64 bits", ErrMalformed, what)
	case n > 1 && b[n-1] == 0:
		// A last byte of zero adds nothing: a longer form than needed.
		return 0, nil, fmt.Errorf("%w: %s not in shortest form", ErrMalformed, what)
	}
	return v, b[n:], nil
}

package invalidate_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	wire "github.com/tiercache/tiercache/internal/invalidate"
)

// The golden vectors of the package doc, as it writes them, and the
// messages they are.
var goldens = []struct {
	name string
	hex  string
	msg  wire.Message
}{
	{"version 3, keys, at 42", "03 00 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 03 06 757365723a31 00 03 613a62 3432",
		wire.Message{Origin: goldenOrigin, Keys: goldenKeys, Sent: goldenSent, Seq: 42, Version: 3}},
	{"version 3, all, no position", "03 01 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 00",
		wire.Message{Origin: goldenOrigin, All: true, Sent: goldenSent, Version: 3}},
	{"version 2, keys", "02 00 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 03 06 757365723a31 00 03 613a62",
		wire.Message{Origin: goldenOrigin, Keys: goldenKeys, Sent: goldenSent}},
	{"version 2, all", "02 01 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 00",
		wire.Message{Origin: goldenOrigin, All: true, Sent: goldenSent}},
	{"version 1, keys", "01 00 00112233445566778899aabbccddeeff 03 06 757365723a31 00 03 613a62",
		wire.Message{Origin: goldenOrigin, Keys: goldenKeys}},
	{"version 1, all", "01 01 00112233445566778899aabbccddeeff 00",
		wire.Message{Origin: goldenOrigin, All: true}},
}

var (
	goldenOrigin = wire.Origin{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	goldenKeys   = []string{"user:1", "", "a:b"}
	goldenSent   = time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC)
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The doc's golden vectors are these, and only these; each decodes to its
// message, and each message encodes to its vector.
func TestGoldenVectors(t *testing.T) {
	doc := docComment(t)
	section := doc[strings.Index(doc, "# Golden vectors"):strings.Index(doc, "# Writing from another language")]
	var inDoc []string
	for line := range strings.Lines(section) {
		if v, ok := strings.CutPrefix(line, "\t"); ok {
			inDoc = append(inDoc, strings.TrimSuffix(v, "\n"))
		}
	}
	var tested []string
	for _, g := range goldens {
		tested = append(tested, g.hex)
		b := unhex(t, g.hex)
		m, err := wire.Decode(b)
		if err != nil {
			t.Errorf("%s: Decode: %v", g.name, err)
			continue
		}
		if m.Origin != g.msg.Origin || m.All != g.msg.All || !slices.Equal(m.Keys, g.msg.Keys) || !m.Sent.Equal(g.msg.Sent) ||
			m.Seq != g.msg.Seq {
			t.Errorf("%s: Decode = %+v; want %+v", g.name, m, g.msg)
		}
		if got := g.msg.AppendVersion(nil, int(b[0])); !bytes.Equal(got, b) {
			t.Errorf("%s: Append = %x; want %x", g.name, got, b)
		}
	}
	if !slices.Equal(inDoc, tested) {
		t.Fatalf("the doc's golden vectors:\n%q\nthe tested ones:\n%q", inDoc, tested)
	}
}

// docMessage is a message as the doc's wire format section describes it.
type docMessage struct {
	version, flags byte
	origin         []byte
	sent           uint64
	keys           []string
	position       uint64
}

// parseAsDoc parses b following the doc alone, as a reader in another
// language would, and fails t where b strays from it.
func parseAsDoc(t *testing.T, b []byte) docMessage {
	t.Helper()
	if len(b) < 19 {
		t.Fatalf("%x: shorter than a header", b)
	}
	m := docMessage{version: b[0], flags: b[1], origin: b[2:18]}
	rest := b[18:]
	varint := func(what string) uint64 {
		v, n := binary.Uvarint(rest)
		if n <= 0 || (n > 1 && rest[n-1] == 0) {
			t.Fatalf("%x: %s is not a shortest varint", b, what)
		}
		rest = rest[n:]
		return v
	}
	if m.version >= 2 {
		m.sent = varint("sent")
	}
	for range varint("N") {
		l := varint("L")
		if l > uint64(len(rest)) {
			t.Fatalf("%x: a key runs past the end", b)
		}
		m.keys, rest = append(m.keys, string(rest[:l])), rest[l:]
	}
	if m.version == 3 && len(rest) > 0 {
		p, err := strconv.ParseUint(string(rest), 10, 63)
		if err != nil || rest[0] == '0' {
			t.Fatalf("%x: the position %q is not canonical decimal", b, rest)
		}
		m.position, rest = p, nil
	}
	if len(rest) != 0 {
		t.Fatalf("%x: %d bytes after the last key", b, len(rest))
	}
	return m
}

// The golden vectors parse, by the doc alone, to what the doc says.
func TestGoldenVectorsFollowTheDoc(t *testing.T) {
	for _, g := range goldens {
		m := parseAsDoc(t, unhex(t, g.hex))
		wantVersion, wantSent := byte(1), uint64(0)
		if !g.msg.Sent.IsZero() {
			wantVersion, wantSent = 2, uint64(g.msg.Sent.UnixNano())
		}
		if g.msg.Version == 3 {
			wantVersion = 3
		}
		wantFlags := byte(0)
		if g.msg.All {
			wantFlags = 1
		}
		if m.version != wantVersion || m.flags != wantFlags || !bytes.Equal(m.origin, goldenOrigin[:]) ||
			m.sent != wantSent || !slices.Equal(m.keys, g.msg.Keys) || m.position != g.msg.Seq {
			t.Errorf("%s parses to %+v", g.name, m)
		}
	}
	if got := uint64(goldenSent.UnixNano()); got != 1700000000123456789 {
		t.Fatalf("the golden send time is %d ns, not the doc's", got)
	}
}

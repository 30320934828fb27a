package remote_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/remote"
)

func TestMarkers(t *testing.T) {
	absent := remote.AbsentMarker()
	if string(absent) != remote.MarkerPrefix+"absent" {
		t.Fatalf("AbsentMarker() = %q", absent)
	}
	if !remote.IsMarker(absent) || !remote.IsAbsentMarker(absent) || remote.IsLeaseMarker(absent) {
		t.Fatalf("AbsentMarker(): IsMarker %v, IsAbsentMarker %v, IsLeaseMarker %v; want true, true, false",
			remote.IsMarker(absent), remote.IsAbsentMarker(absent), remote.IsLeaseMarker(absent))
	}
	absent[0] = 'x' // the caller's own copy
	if !remote.IsAbsentMarker(remote.AbsentMarker()) {
		t.Fatal("changing one AbsentMarker() changed the next")
	}

	tok := remote.NewLeaseToken()
	lease := remote.LeaseMarker(tok)
	if string(lease) != remote.MarkerPrefix+"lease:"+tok {
		t.Fatalf("LeaseMarker(%q) = %q", tok, lease)
	}
	if !remote.IsMarker(lease) || !remote.IsLeaseMarker(lease) || remote.IsAbsentMarker(lease) {
		t.Fatalf("LeaseMarker: IsMarker %v, IsLeaseMarker %v, IsAbsentMarker %v; want true, true, false",
			remote.IsMarker(lease), remote.IsLeaseMarker(lease), remote.IsAbsentMarker(lease))
	}
	if !remote.IsLeaseMarker(remote.LeaseMarker("")) {
		t.Fatal("a lease marker with an empty token is not a lease marker")
	}

	for _, b := range [][]byte{
		nil, {}, []byte("absent"), []byte("lease:x"), []byte("tiercache"),
		[]byte("\x00tiercache"), // the prefix cut short
		[]byte(remote.MarkerPrefix[1:] + "absent"),
		append([]byte(remote.MarkerPrefix+"absent"), 'x'),
		[]byte(remote.MarkerPrefix + "lease"),
	} {
		if remote.IsAbsentMarker(b) || remote.IsLeaseMarker(b) {
			t.Errorf("%q: IsAbsentMarker %v, IsLeaseMarker %v; want false, false", b, remote.IsAbsentMarker(b), remote.IsLeaseMarker(b))
		}
		if remote.IsMarker(b) != bytes.HasPrefix(b, []byte(remote.MarkerPrefix)) {
			t.Errorf("IsMarker(%q) = %v", b, remote.IsMarker(b))
		}
	}
	if !remote.IsMarker([]byte(remote.MarkerPrefix + "future")) {
		t.Fatal("IsMarker does not take every value with the prefix")
	}
}

func TestLeaseTokensAreUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		tok := remote.NewLeaseToken()
		if len(tok) != 32 || strings.Trim(tok, "0123456789abcdef") != "" {
			t.Fatalf("token %q is not 32 hex digits", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q returned twice", tok)
		}
		seen[tok] = true
	}
}

func TestDoneMarker(t *testing.T) {
	tok := remote.NewLeaseToken()
	for _, failed := range []bool{false, true} {
		m := remote.DoneMarker(tok, failed)
		got, gotFailed, ok := remote.ParseDoneMarker(m)
		if !ok || got != tok || gotFailed != failed || !remote.IsMarker(m) || remote.IsLeaseMarker(m) || remote.IsAbsentMarker(m) {
			t.Fatalf("DoneMarker(%v) = %q parses as %q, %v, %v", failed, m, got, gotFailed, ok)
		}
	}
	for _, b := range [][]byte{nil, []byte("v"), remote.AbsentMarker(), remote.LeaseMarker(tok), []byte(remote.MarkerPrefix + "done:" + tok)} {
		if _, _, ok := remote.ParseDoneMarker(b); ok {
			t.Fatalf("ParseDoneMarker(%q) ok", b)
		}
	}
	if got, ok := remote.LeaseToken(remote.LeaseMarker(tok)); !ok || got != tok {
		t.Fatalf("LeaseToken = %q, %v", got, ok)
	}
	if _, ok := remote.LeaseToken([]byte("v")); ok {
		t.Fatal("LeaseToken of a value ok")
	}
}

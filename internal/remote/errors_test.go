package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/remote"
)

// Every method's error is a *remote.Error naming the operation, the
// namespace and the keys, around the cause.
func TestErrorShape(t *testing.T) {
	if remote.ErrNotFound.Error() != "not found" {
		t.Fatalf("ErrNotFound = %q, want %q", remote.ErrNotFound, "not found")
	}
	st, s := newStore(t)
	ns := s.Namespace
	bg := context.Background()
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	noop := func([]string) []byte { return nil }

	for _, tc := range []struct {
		name  string
		err   error
		op    string
		keys  []string
		cause error
		text  string
	}{
		{"GetWithTTL missing", func() error { _, _, err := st.GetWithTTL(bg, "1"); return err }(),
			"get", []string{"1"}, remote.ErrNotFound, fmt.Sprintf(`remote: get "1" in namespace %q: not found`, ns)},
		{"GetWithTTL cancelled", func() error { _, _, err := st.GetWithTTL(cancelled, "k"); return err }(),
			"get", []string{"k"}, context.Canceled, fmt.Sprintf(`remote: get "k" in namespace %q: context canceled`, ns)},
		{"SetAndPublish bad ttl", st.SetAndPublish(bg, "k", nil, -time.Second, nil),
			"set", []string{"k"}, nil, fmt.Sprintf(`remote: set "k" in namespace %q: ttl must be >= 0, got -1s`, ns)},
		{"SetAndPublish ttl under 1ms", st.SetAndPublish(bg, "k", nil, time.Microsecond, nil),
			"set", []string{"k"}, nil, fmt.Sprintf(`remote: set "k" in namespace %q: ttl must be 0 or at least 1ms, got 1µs`, ns)},
		{"SetAndPublish cancelled", st.SetAndPublish(cancelled, "k", nil, 0, nil),
			"set", []string{"k"}, context.Canceled, ""},
		{"DeleteAndPublish cancelled", st.DeleteAndPublish(cancelled, noop, "a", "b"),
			"delete", []string{"a", "b"}, context.Canceled, fmt.Sprintf(`remote: delete "a", "b" in namespace %q: context canceled`, ns)},
		{"DeleteAndPublish of many cancelled", st.DeleteAndPublish(cancelled, noop, "a", "b", "c", "d", "e"),
			"delete", []string{"a", "b", "c", "d", "e"}, context.Canceled,
			fmt.Sprintf(`remote: delete "a", "b", "c" … and 2 more in namespace %q: context canceled`, ns)},
		{"Keys cancelled", func() error { _, err := st.Keys(cancelled); return err }(),
			"keys", nil, context.Canceled, fmt.Sprintf(`remote: keys in namespace %q: context canceled`, ns)},
	} {
		var re *remote.Error
		if !errors.As(tc.err, &re) {
			t.Errorf("%s: err = %v (%T), want a *remote.Error", tc.name, tc.err, tc.err)
			continue
		}
		if re.Op != tc.op || re.Namespace != ns || !slices.Equal(re.Keys, tc.keys) {
			t.Errorf("%s: Error{Op: %q, Namespace: %q, Keys: %q}, want {%q, %q, %q}", tc.name, re.Op, re.Namespace, re.Keys, tc.op, ns, tc.keys)
		}
		if tc.cause != nil && !errors.Is(tc.err, tc.cause) {
			t.Errorf("%s: errors.Is(%v, %v) = false", tc.name, tc.err, tc.cause)
		}
		if errors.Is(tc.err, redis.Nil) {
			t.Errorf("%s: redis.Nil leaked", tc.name)
		}
		if tc.text != "" && tc.err.Error() != tc.text {
			t.Errorf("%s: text = %q, want %q", tc.name, tc.err, tc.text)
		}
	}
}

// The error keeps its own copy of the keys.
func TestErrorKeysAreCopied(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	keys := []string{"a", "b"}
	err := st.DeleteAndPublish(ctx, nil, keys...)
	keys[0] = "changed"
	var re *remote.Error
	if !errors.As(err, &re) || re.Keys[0] != "a" {
		t.Fatalf("Error.Keys follows the caller's slice: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	cause := errors.New("boom")
	for _, tc := range []struct {
		e    remote.Error
		want string
	}{
		{remote.Error{Op: "get", Namespace: "cache", Keys: []string{"1"}, Err: remote.ErrNotFound}, `remote: get "1" in namespace "cache": not found`},
		{remote.Error{Op: "delete", Namespace: "n", Keys: []string{"a", "b", "c"}, Err: cause}, `remote: delete "a", "b", "c" in namespace "n": boom`},
		{remote.Error{Op: "delete", Namespace: "n", Keys: []string{"a", "b", "c", "d"}, Err: cause}, `remote: delete "a", "b", "c" … and 1 more in namespace "n": boom`},
		{remote.Error{Op: "keys", Namespace: "n", Err: cause}, `remote: keys in namespace "n": boom`},
		{remote.Error{Op: "get", Namespace: "n", Keys: []string{"new\nline"}, Err: cause}, `remote: get "new\nline" in namespace "n": boom`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(&tc.e, tc.e.Err) {
			t.Errorf("%q does not unwrap to its cause", tc.want)
		}
	}
}

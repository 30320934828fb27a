package tiered

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tiercache/tiercache/internal/remote"
)

// Codec turns values into the bytes stored in Redis and back. Unmarshal gets
// bytes from the network: it must return an error for bytes it cannot
// decode, never panic.
type Codec[V any] interface {
	Marshal(v V) ([]byte, error)
	Unmarshal(data []byte) (V, error)
}

// defaultCodec stores string and []byte values as their raw bytes, so other
// programs can read them, and every other type as JSON. Only the types string
// and []byte themselves are raw; a named type such as `type ID string` is JSON.
// A type that JSON can never encode (a chan or func, or a struct with an
// exported field of such a type) is an error naming it, so that New refuses
// it rather than every Set failing.
func defaultCodec[V any]() (Codec[V], error) {
	var zero V
	switch any(zero).(type) {
	case string:
		return any(stringCodec{}).(Codec[V]), nil
	case []byte:
		return any(bytesCodec{}).(Codec[V]), nil
	}
	if _, err := json.Marshal(zero); err != nil {
		return nil, fmt.Errorf("the default JSON codec cannot encode values of type %T (%v); give one in Options.Codec", zero, err)
	}
	return JSON[V]{}, nil
}

// JSON is a Codec that uses encoding/json.
type JSON[V any] struct{}

// Marshal implements Codec.
func (JSON[V]) Marshal(v V) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON[V]) Unmarshal(data []byte) (V, error) {
	var v V
	err := json.Unmarshal(data, &v)
	return v, err
}

type stringCodec struct{}

func (stringCodec) Marshal(v string) ([]byte, error)      { return []byte(v), nil }
func (stringCodec) Unmarshal(data []byte) (string, error) { return string(data), nil }

type bytesCodec struct{}

func (bytesCodec) Marshal(v []byte) ([]byte, error)      { return v, nil }
func (bytesCodec) Unmarshal(data []byte) ([]byte, error) { return data, nil }

// encode marshals v for Redis. It refuses bytes that begin with the marker
// prefix (remote.MarkerPrefix): every instance would read them back as one of
// tiercache's own markers (an absence, a lease), not as a value.
func (c *Cache[V]) encode(v V) ([]byte, error) {
	data, err := c.codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if remote.IsMarker(data) {
		return nil, errors.New("encode: the encoded value begins with tiercache's reserved marker prefix (remote.MarkerPrefix)")
	}
	return data, nil
}

// held is what a key in Redis holds, as far as a read is concerned.
type held uint8

const (
	heldValue  held = iota // a value, decoded into the entry
	heldAbsent             // an absence marker: the entry is an absence to remember
	heldLease              // another instance's lease: a load in progress, no value yet
	heldDone               // a lease's outcome (no value): nothing, unless one waited on that lease
)

// decode turns what Redis holds at key into a local entry, charged for its
// bytes, and says what it was. Any unknown marker, or bytes the Codec rejects, is a
// *decodeError, counted in Stats.DecodeErrors.
func (c *Cache[V]) decode(key string, data []byte) (e entry[V], h held, err error) {
	if remote.IsMarker(data) {
		switch {
		case remote.IsAbsentMarker(data):
			e = entry[V]{absent: true}
			c.charge(&e, key, data)
			return e, heldAbsent, nil
		case remote.IsLeaseMarker(data):
			return e, heldLease, nil
		}
		if _, _, ok := remote.ParseDoneMarker(data); ok {
			return e, heldDone, nil
		}
		err = errors.New("an unknown tiercache marker (written by a newer release?)")
	} else {
		e.v, err = c.codec.Unmarshal(data)
	}
	if err != nil {
		c.stats.decodeErrors.Add(1)
		return entry[V]{}, heldValue, &decodeError{data: data, err: err}
	}
	c.charge(&e, key, data)
	return e, heldValue, nil
}

// decodeError is a Redis value that the Codec rejected.
type decodeError struct {
	data []byte // the bytes Redis holds
	err  error
}

func (e *decodeError) Error() string { return "decode: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

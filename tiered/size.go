package tiered

// What the local tier charges an entry against LocalMaxBytes: the bytes of
// its key and of its value as Redis holds it (the Codec's encoding), or, with
// Options.Sizer, of its key and what the Sizer says of the value. An
// absence costs its key and its marker.

// charge sets e's size for key, whose value was encoded as data.
func (c *Cache[V]) charge(e *entry[V], key string, data []byte) {
	n := len(data)
	if c.sizer != nil && !e.absent {
		n = c.sizer(e.v)
	}
	e.size = int64(len(key) + max(n, 0))
}

// sized returns the entry of value v, encoded as data, charged for key.
func (c *Cache[V]) sized(key string, v V, data []byte) entry[V] {
	e := entry[V]{v: v}
	c.charge(&e, key, data)
	return e
}

func entrySize[V any](e entry[V]) int64      { return e.size }
func staleSize[V any](e staleEntry[V]) int64 { return e.e.size }

package remote

// Views of a Store's internals for the tests of package remote_test. They
// are no part of the package's API: nothing outside the tests needs them.

// RedisKey returns the Redis key that holds key.
func (s *Store) RedisKey(key string) string { return s.prefix + key }

// EnforcesDeadlines reports whether the store's client enforces a ctx's
// deadline itself (see clientEnforcesDeadlines).
func (s *Store) EnforcesDeadlines() bool { return s.enforcesDeadlines }

// Silent returns a Silent store of the same client and namespace: its
// writes publish nothing, for a test's setup.
func (s *Store) Silent() *Store {
	st, err := New(s.client, Options{Namespace: s.namespace, Silent: true})
	if err != nil {
		panic(err)
	}
	return st
}

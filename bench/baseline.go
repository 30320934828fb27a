package main

import (
	"context"
	"errors"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/tiercache/tiercache/tiered"
)

// The baseline of a local hit, in the report (localhit, hub) and in the Go
// benchmarks (BenchmarkSimpleLRUMutex): golang-lru's simplelru under one
// sync.Mutex, the least a local tier could cost. internal/local's
// benchmarks measure its own Get; this is the one copy of the floor.

// mutexLRU is the baseline of a local hit: golang-lru's simplelru under one
// mutex.
type mutexLRU struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, string] // guarded by mu
}

// newMutexLRU returns a mutexLRU holding ks, with values value(i).
func newMutexLRU(ks []string) *mutexLRU {
	l, err := simplelru.NewLRU[string, string](len(ks), nil)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	for i, k := range ks {
		l.Add(k, value(i))
	}
	return &mutexLRU{lru: l}
}

// get reads key.
func (m *mutexLRU) get(key string) (string, bool) {
	m.mu.Lock()
	v, ok := m.lru.Get(key)
	m.mu.Unlock()
	return v, ok
}

// errMiss is a read of the baseline that did not find its key.
var errMiss = errors.New("bench: the bare LRU lost a key")

// read is get as an operation to time: it fails on a miss.
func (m *mutexLRU) read(key string) error {
	if _, ok := m.get(key); !ok {
		return errMiss
	}
	return nil
}

// getter is c's Get of a key as an operation to time.
func getter(ctx context.Context, c *tiered.Cache[string]) func(string) error {
	return func(k string) error { _, err := c.Get(ctx, k); return err }
}

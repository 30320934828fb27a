package faults

import (
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// suite is one run of TestFaults's traffic and checks: against what, with
// which Hub options, through which faults.
type suite struct {
	name     string
	tracking bool // HubOptions.Tracking: Redis reports every change itself
	cluster  bool // a Cluster of three masters with a replica each
}

// target is what a suite runs against and breaks: a redis-server of the
// test's own, or a Cluster of the test's own.
type target struct {
	s *redistest.Server  // a single node, or nil
	c *redistest.Cluster // a Cluster, or nil
}

func (g target) namespace() string {
	if g.c != nil {
		return g.c.Namespace
	}
	return g.s.Namespace
}

// client returns a new client with go-redis's default options but its
// name, closed when the test ends.
func (g target) client(t testingTB, name string) redis.UniversalClient {
	if g.c != nil {
		// A copy each: go-redis appends the nodes it finds to Addrs in place.
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: slices.Clone(g.c.Addrs), ClientName: name})
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	return g.s.NewClient(name)
}

// killPubSub kills the pub/sub connections of the client named name (every
// client's when name is empty), on every node, and returns how many.
func (g target) killPubSub(name string) int {
	if g.c != nil {
		return g.c.KillPubSub(name)
	}
	return g.s.KillPubSubIfAny(name)
}

// testingTB is the part of testing.TB that target needs.
type testingTB interface{ Cleanup(func()) }

// Package faults holds no code: its tests are a fault-injection suite for
// package tiered. Three caches, each with its own Redis client and Hub,
// share one namespace on a redis-server the test starts itself. While
// writers and readers run on every instance, the suite kills the
// invalidation subscriptions, restarts the server, pauses its clients
// (CLIENT PAUSE WRITE and ALL) and makes it drop subscribers whose output
// buffer overflows. It runs three times: with invalidation messages
// (TestFaults), with HubOptions.Tracking (TestFaultsTracking), and on a
// Cluster of its own, three masters with a replica each, where graceful
// failovers take the place of the restarts, pauses and buffer limit
// (TestFaultsCluster). It then checks what tiered promises under faults:
//
//   - read your writes: an instance never returns a version older than one
//     its own Set acknowledged before the read began;
//   - no call (Get, Set, Delete) returns more than 20 ms after its context's
//     deadline, not counting the time the process could not run it (a
//     watcher goroutine's late wake-ups, and the runtime's run-queue waits,
//     on a loaded machine);
//   - no read returns a value that was overwritten more than 100 ms before
//     the read began (reads more than MaxStaleness, 10 ms, behind are
//     counted, not bounded);
//   - once the faults stop, no call fails (but for a deadline missed while
//     the process was stalled for half the call) and every instance sees a
//     final write within 1 s;
//   - Close leaves no goroutine behind.
//
// It prints one row per phase, for docs/guarantees.md, with how the
// subscriptions came back: purged, or repaired from the namespace's log
// (and how many keys the repairs dropped).
//
// Beside it, consistency tests that assert what the bench used to report:
// TestStaleHunt, TestNanosleepPoller and TestFrozenSubscription (no read
// older than MaxStaleness, with the proof off as a control), and TestOutage
// (a server of its own stopped under traffic, StaleIfError on and off; it
// logs a table for docs/guarantees.md).
//
// Every test needs a real server (REDIS_ADDR set), since the embedded one
// cannot pause clients, limit output buffers or fail over; without it the
// package runs nothing and go test says "[no tests to run]". Run it alone
// with
//
//	REDIS_ADDR=127.0.0.1:6379 go test -race -count=1 -v ./faults/
//
// and check the harness itself (the same traffic and checks, no fault
// injected) with -args -faults.dry.
package faults

package faults

import (
	"testing"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// TestJudge checks the harness's arithmetic on a made-up history; it needs
// no server.
func TestJudge(t *testing.T) {
	ms := func(n float64) int64 { return int64(n * float64(time.Millisecond)) }
	f := &fixture{insts: make([]*tiered.Cache[string], 2)}
	f.keys[0].acks = []ack{
		{version: 1, at: ms(10), inst: 0},
		{version: 2, at: ms(20), inst: 1},
		{version: 3, at: ms(35), inst: 0},
		{version: 4, at: ms(55), inst: 1}, // after the restart
	}
	f.keys[0].failed = []int64{5}
	// Key 1: the Set of v2 failed, and reached Redis after v3's was
	// acknowledged; it was first read at 200 ms, and v4 acknowledged after.
	f.keys[1].acks = []ack{{version: 1, at: ms(60), inst: 0}, {version: 3, at: ms(70), inst: 1}, {version: 4, at: ms(250), inst: 1}}
	f.keys[1].failed = []int64{2}
	// The process could not run from 310 to 350 ms.
	f.stalls = &stalls{spans: []span{{begin: ms(310), done: ms(350)}}}
	read := func(inst uint8, version int64, start, end float64) sample {
		return sample{op: opGet, inst: inst, version: version, start: ms(start), end: ms(end), deadline: ms(start + 200)}
	}
	read1 := func(inst uint8, version int64, start, end float64) sample {
		s := read(inst, version, start, end)
		s.key = 1
		return s
	}
	f.samples = [][]sample{{
		read(0, 1, 30, 31),   // 10 ms behind v2: not noted (the count is of more than MaxStaleness, 10 ms)
		read(0, 1, 31, 32),   // 11 ms behind v2: noted
		read(0, 2, 36, 37),   // 1 ms behind v3, and v3 was instance 0's own: RYW
		read(1, 2, 36, 37),   // 1 ms behind, not its own write
		read(0, 0, 38, 45),   // overlaps the restart: not judged
		read(0, 0, 52, 53),   // after the restart, before v4: fine
		read(0, 0, 180, 181), // 125 ms behind v4 (acknowledged after the restart): stale
		read(1, 0, 180, 181), // the same, and v4 was instance 1's own: RYW too
		{op: opSet, start: ms(0), end: ms(230), deadline: ms(200), err: "deadline exceeded"}, // 30 ms late
		{op: opSet, start: ms(0), end: ms(215), deadline: ms(200)},                           // within the slack
		read1(0, 2, 200, 201), // v2 may have landed after v3: not behind
		read1(1, 2, 400, 401), // 150 ms behind v4, acknowledged after v2 was read: stale, and RYW
		{op: opSet, key: 1, start: ms(100), end: ms(360), deadline: ms(300)}, // 60 ms late, 40 of them stalled
	}}
	rows := f.judge([]string{"only"}, []span{{begin: ms(40), done: ms(50)}})
	type counts struct {
		reads, sets, noted, stale, ryw, late, errs, staleOfFailed int
		worstStale, worstOver                                     int64
	}
	r := rows[0]
	got := counts{r.reads, r.sets, r.noted, r.stale, r.ryw, r.late, r.errs, r.staleOfFailed, r.worstStale, r.worstOver}
	want := counts{reads: 10, sets: 3, noted: 4, stale: 3, ryw: 3, late: 1, errs: 1, staleOfFailed: 1,
		worstStale: ms(150), worstOver: ms(30)}
	if got != want {
		t.Fatalf("judged %+v, want %+v (examples: %q)", got, want, r.examples)
	}
}

func TestEpochOf(t *testing.T) {
	restarts := []span{{begin: 10, done: 20}, {begin: 40, done: 50}}
	for _, c := range []struct {
		start, end, epoch int64
		during            bool
	}{
		{0, 5, -1 << 62, false},
		{0, 10, -1 << 62, true}, // ended as the first restart began
		{15, 16, -1 << 62, true},
		{20, 25, -1 << 62, true}, // began as it finished
		{21, 39, 20, false},
		{30, 45, 20, true},
		{51, 60, 50, false},
	} {
		epoch, during := epochOf(restarts, c.start, c.end)
		if epoch != c.epoch || during != c.during {
			t.Errorf("epochOf(%d, %d) = %d, %v; want %d, %v", c.start, c.end, epoch, during, c.epoch, c.during)
		}
	}
}

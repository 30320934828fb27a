package faults

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// Judging limits.
const (
	staleNoted = tiered.DefaultMaxStaleness // reported, not bounded: see TestFaults
	staleLimit = 100 * time.Millisecond     // no read may be this far behind
	lateSlack  = 20 * time.Millisecond      // a call may return this long past its deadline
)

// span is a restart of the server: from the kill until it answered PING.
type span struct{ begin, done int64 }

// row is what one phase (or the total) measured.
type row struct {
	name          string
	reads, sets   int
	noted, stale  int   // reads more than staleNoted, staleLimit behind
	worstStale    int64 // ns
	ryw           int   // reads older than the reader's own acknowledged write
	late          int   // calls that returned more than lateSlack past their deadline, excuse taken out
	rawLate       int   // the same, excuse left in
	worstOver     int64 // ns past the deadline, the worst call
	errs          int
	stalledErrs   int // of errs, deadlines exceeded in calls the process was stalled for half their time
	errKinds      map[string]int
	breaks        uint64   // subscriptions lost, all instances
	recovery      recovery // how they came back
	staleOfFailed int      // of the stale reads, those of a version whose Set failed
	examples      []string
}

// example keeps the first few violations of a row, for the log.
func (r *row) example(format string, args ...any) {
	if len(r.examples) < 4 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

func (r *row) add(o *row) {
	r.reads += o.reads
	r.sets += o.sets
	r.noted += o.noted
	r.stale += o.stale
	r.worstStale = max(r.worstStale, o.worstStale)
	r.ryw += o.ryw
	r.late += o.late
	r.rawLate += o.rawLate
	r.worstOver = max(r.worstOver, o.worstOver)
	r.errs += o.errs
	r.stalledErrs += o.stalledErrs
	for k, n := range o.errKinds {
		r.errKinds[k] += n
	}
	for _, e := range o.examples {
		r.example("%s", e)
	}
	r.breaks += o.breaks
	r.recovery.purges += o.recovery.purges
	r.recovery.repairs += o.recovery.repairs
	r.recovery.repairedKeys += o.recovery.repairedKeys
	r.staleOfFailed += o.staleOfFailed
}

// judge sorts every sample into its phase's row. restarts must be in time
// order. Against a restarted server (which lost its data) a read is judged
// only against writes acknowledged after the restart ended, and a read that
// overlapped a restart is not judged for staleness or read-your-writes.
//
// A Set that failed may still reach Redis, later than the Sets of newer
// versions acknowledged meanwhile (the call gave up; its write goes on, and
// go-redis retries it): Redis then holds the older number, and a read of it
// is not behind. Such a version landed before the first read that returned
// it ended, so a read of it is judged only against writes acknowledged after
// that. A call's time past its deadline does not count the time the stall
// watcher found the process unable to run a goroutine that was due (see
// stalls.excuse).
func (f *fixture) judge(phases []string, restarts []span) []*row {
	rows := make([]*row, len(phases))
	for i, name := range phases {
		rows[i] = &row{name: name, errKinds: map[string]int{}}
	}
	j := f.newJudgement(restarts)
	for _, log := range f.samples {
		for _, s := range log {
			r := rows[s.phase]
			if over := s.end - s.deadline; over > int64(lateSlack) {
				r.rawLate++
				stalled := f.stalls.excuse(s.deadline, s.end)
				if over-stalled > int64(lateSlack) {
					r.late++
					r.worstOver = max(r.worstOver, over-stalled)
					r.example("late: instance %d's %s of %s returned %v past its deadline, %v of it excused (stalled or runnable)",
						s.inst, opName(s.op), keyName(int(s.key)), dur(over), dur(stalled))
				}
			}
			if s.err != "" {
				r.errs++
				r.errKinds[s.err]++
				if s.err == errDeadline && 2*f.stalls.excuse(s.start, s.end) >= int64(callTimeout) {
					r.stalledErrs++
				}
			}
			switch {
			case s.op != opGet:
				r.sets++
				continue
			case s.err != "":
				continue
			}
			r.reads++
			j.read(r, s)
		}
	}
	return rows
}

// judgement is what judge knows of the history to judge a read.
type judgement struct {
	f        *fixture
	restarts []span
	own      [][][]ack          // per key, per instance: its acknowledged writes
	failed   []map[int64]bool   // per key: the versions whose Set failed
	seen     map[[3]int64]int64 // (key, failed version, epoch): the earliest end of a read of it
}

func (f *fixture) newJudgement(restarts []span) *judgement {
	j := &judgement{f: f, restarts: restarts, own: make([][][]ack, nKeys),
		failed: make([]map[int64]bool, nKeys), seen: map[[3]int64]int64{}}
	for k := range f.keys {
		j.own[k] = make([][]ack, len(f.insts))
		j.failed[k] = map[int64]bool{}
		for _, a := range f.keys[k].acks {
			j.own[k][a.inst] = append(j.own[k][a.inst], a)
		}
		for _, v := range f.keys[k].failed {
			j.failed[k][v] = true
		}
	}
	for _, log := range f.samples {
		for _, s := range log {
			if s.op != opGet || s.err != "" || !j.failed[s.key][s.version] {
				continue
			}
			if epoch, during := epochOf(restarts, s.start, s.end); !during {
				id := [3]int64{int64(s.key), s.version, epoch}
				if at, ok := j.seen[id]; !ok || s.end < at {
					j.seen[id] = s.end
				}
			}
		}
	}
	return j
}

// read judges one successful read s into r.
func (j *judgement) read(r *row, s sample) {
	epoch, during := epochOf(j.restarts, s.start, s.end)
	if during {
		return
	}
	failed := j.failed[s.key][s.version]
	floor := epoch // writes acknowledged before floor do not count against s
	if failed {
		floor = max(floor, j.seen[[3]int64{int64(s.key), s.version, epoch}])
	}
	acks := j.f.keys[s.key].acks
	// The first acknowledged write newer than the version read, and
	// made after floor: acks ascend in version and time.
	i := max(sort.Search(len(acks), func(i int) bool { return acks[i].version > s.version }),
		sort.Search(len(acks), func(i int) bool { return acks[i].at > floor }))
	if i < len(acks) && acks[i].at < s.start {
		behind := s.start - acks[i].at
		r.worstStale = max(r.worstStale, behind)
		if behind > int64(staleNoted) {
			r.noted++
		}
		if behind > int64(staleLimit) {
			r.stale++
			if failed {
				r.staleOfFailed++
			}
			r.example("stale: instance %d read %s=%d%s at %v, %v after v%d was acknowledged (by instance %d)",
				s.inst, keyName(int(s.key)), s.version, failedNote(failed), dur(s.start), dur(behind), acks[i].version, acks[i].inst)
		}
	}
	// The reader's instance's last write acknowledged before the read.
	mine := j.own[s.key][s.inst]
	if m := sort.Search(len(mine), func(i int) bool { return mine[i].at >= s.start }); m > 0 {
		if a := mine[m-1]; a.at > floor && s.version < a.version {
			r.ryw++
			r.example("read-your-writes: instance %d read %s=%d%s at %v (returned %v later), "+
				"%v after its own Set of v%d returned",
				s.inst, keyName(int(s.key)), s.version, failedNote(failed), dur(s.start), dur(s.end-s.start),
				dur(s.start-a.at), a.version)
		}
	}
}

func failedNote(failed bool) string {
	if failed {
		return " (its Set failed)"
	}
	return ""
}

func opName(o op) string {
	switch o {
	case opGet:
		return "read"
	case opSet:
		return "Set"
	}
	return "Delete"
}

// epochOf returns when the last restart before start ended (or a time
// before every sample), and whether [start, end] overlaps a restart: such a
// call may have been answered by either server, the one that held the data
// or the new one that lost it, and is not judged.
func epochOf(restarts []span, start, end int64) (epoch int64, during bool) {
	epoch = -1 << 62
	for _, r := range restarts {
		if end < r.begin {
			break
		}
		if start <= r.done {
			return epoch, true
		}
		epoch = r.done
	}
	return epoch, false
}

// table lays rows and their total out for t.Logf, in fewer than 90 columns.
func table(rows []*row) (string, *row) {
	total := &row{name: "total", errKinds: map[string]int{}}
	for _, r := range rows {
		total.add(r)
	}
	var b strings.Builder
	line := func(cells ...any) {
		const format = "%-12s %7v %6v %6v %8v %5v %5v %9v %7v %6v %6v %7v %8v"
		b.WriteString(strings.TrimRight(fmt.Sprintf(format, cells...), " ") + "\n")
	}
	line("phase", "reads", ">10ms", ">100ms", "worst", "RYW", "late", "worst", "errors", "breaks", "purges", "repairs", "keys")
	line("", "", "behind", "behind", "behind", "", "", "overrun", "", "", "", "", "repaired")
	for _, r := range append(rows, total) {
		rc := r.recovery
		line(r.name, r.reads, r.noted, r.stale, dur(r.worstStale), r.ryw, r.late, dur(r.worstOver), r.errs, r.breaks,
			rc.purges, rc.repairs, rc.repairedKeys)
	}
	return b.String(), total
}

// kinds lists error kinds, most frequent first.
func kinds(m map[string]int) string {
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// dur prints ns for the table: "-" for none.
func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d <= 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

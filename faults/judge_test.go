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
	late          int   // calls that returned more than lateSlack past their deadline
	worstOver     int64 // ns past the deadline, the worst call
	errs          int
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
	r.worstOver = max(r.worstOver, o.worstOver)
	r.errs += o.errs
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
func (f *fixture) judge(phases []string, restarts []span) []*row {
	rows := make([]*row, len(phases))
	for i, name := range phases {
		rows[i] = &row{name: name, errKinds: map[string]int{}}
	}
	// Each instance's own acknowledged writes, per key, for read-your-writes.
	own := make([][][]ack, nKeys)
	failed := make([]map[int64]bool, nKeys)
	for k := range f.keys {
		own[k] = make([][]ack, len(f.insts))
		failed[k] = map[int64]bool{}
		for _, a := range f.keys[k].acks {
			own[k][a.inst] = append(own[k][a.inst], a)
		}
		for _, v := range f.keys[k].failed {
			failed[k][v] = true
		}
	}
	for _, log := range f.samples {
		for _, s := range log {
			r := rows[s.phase]
			if over := s.end - s.deadline; over > int64(lateSlack) {
				r.late++
				r.worstOver = max(r.worstOver, over)
			}
			if s.err != "" {
				r.errs++
				r.errKinds[s.err]++
			}
			switch {
			case s.op != opGet:
				r.sets++
				continue
			case s.err != "":
				continue
			}
			r.reads++
			epoch, during := epochOf(restarts, s.start, s.end)
			if during {
				continue
			}
			acks := f.keys[s.key].acks
			// The first acknowledged write newer than the version read, and
			// made after the last restart: acks ascend in version and time.
			j := max(sort.Search(len(acks), func(i int) bool { return acks[i].version > s.version }),
				sort.Search(len(acks), func(i int) bool { return acks[i].at > epoch }))
			if j < len(acks) && acks[j].at < s.start {
				behind := s.start - acks[j].at
				r.worstStale = max(r.worstStale, behind)
				if behind > int64(staleNoted) {
					r.noted++
				}
				if behind > int64(staleLimit) {
					r.stale++
					if failed[s.key][s.version] {
						r.staleOfFailed++
					}
					r.example("stale: instance %d read %s=%d at %v, %v after v%d was acknowledged (by instance %d)",
						s.inst, keyName(int(s.key)), s.version, dur(s.start), dur(behind), acks[j].version, acks[j].inst)
				}
			}
			// The reader's instance's last write acknowledged before the read.
			mine := own[s.key][s.inst]
			if m := sort.Search(len(mine), func(i int) bool { return mine[i].at >= s.start }); m > 0 {
				if a := mine[m-1]; a.at > epoch && s.version < a.version {
					r.ryw++
					r.example("read-your-writes: instance %d read %s=%d at %v (returned %v later), "+
						"%v after its own Set of v%d returned",
						s.inst, keyName(int(s.key)), s.version, dur(s.start), dur(s.end-s.start),
						dur(s.start-a.at), a.version)
				}
			}
		}
	}
	return rows
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

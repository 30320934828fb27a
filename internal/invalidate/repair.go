package invalidate

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRepairLimit is Options.RepairLimit when it is 0.
const DefaultRepairLimit = 10_000

// The log of a channel (see LogKey): every write script that publishes a
// version 3 message on the channel also appends it to a Redis stream, in
// the same atomic step, under the position that a counter (SeqKey) gives
// it, 1, 2, 3…, and publishes it with that position. A receiver that keeps
// the position (and a fingerprint) of the last message it applied can read
// back exactly the messages it missed: after a lost connection, or when
// the positions it receives jump (see repairer).
const (
	logPrefix = "tiercache:log:"
	seqPrefix = "tiercache:seq:"
)

// LogKey returns the key of the log of the channel that Channel (g < 0) or
// GroupChannel (g >= 0) names: in the same slot as the channel.
func LogKey(namespace string, g int) string {
	if g < 0 {
		return logPrefix + namespace
	}
	return logPrefix + strings.TrimPrefix(GroupChannel(namespace, g), channelPrefix)
}

// SeqKey returns the key of the counter that gives the positions of the
// log of the same channel as LogKey.
func SeqKey(namespace string, g int) string {
	if g < 0 {
		return seqPrefix + namespace
	}
	return seqPrefix + strings.TrimPrefix(GroupChannel(namespace, g), channelPrefix)
}

// UnloggedKey returns the key of the mark that the write script sets,
// beside the counter that SeqKey names, when it publishes a message that
// takes no position (wire version 1 or 2): the counter's value then. A
// subscriber whose position on the channel is at or before the mark may
// have missed that message, which no log holds.
func UnloggedKey(namespace string, g int) string { return SeqKey(namespace, g) + unloggedSuffix }

const unloggedSuffix = ":unlogged"

// logOf returns the key of channel's log.
func logOf(channel string) string {
	return logPrefix + strings.TrimPrefix(channel, channelPrefix)
}

// position is where a channel's log stood at the last message applied
// from it: its position, and a fingerprint of its bytes, so that a log that
// was recreated (a restart without persistence, a failover that lost its
// tail) is never taken for the one the positions came from.
type position struct {
	seq uint64
	sum uint64 // maphash of the message's bytes; 0 when seq is 0 (an empty log)
}

var sumSeed = maphash.MakeSeed()

func fingerprint(payload string) uint64 { return maphash.String(sumSeed, payload) }

// positions holds the position of every channel the Subscriber heard, kept
// across connections (a channel moves to another link when a Cluster's
// topology changes).
type positions struct {
	mu sync.Mutex
	at map[string]position // guarded by mu
}

func (p *positions) get(channel string) (position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pos, ok := p.at[channel]
	return pos, ok
}

func (p *positions) set(channel string, pos position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = make(map[string]position)
	}
	p.at[channel] = pos
}

func (p *positions) forget(channel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.at, channel)
}

// errCannotRepair says why the messages missed on a channel cannot be read
// back: the owner must purge what it kept of the namespace.
var errCannotRepair = errors.New("invalidate: the missed messages cannot be read back")

// logEntry is one message read back from a log.
type logEntry struct {
	seq     uint64
	payload string
}

// readLog reads channel's log from position from (inclusive) to to
// (inclusive; 0 for the end), at most limit+1 entries, and checks that the
// first is the message of from: otherwise the log was trimmed past it, or
// recreated, and errCannotRepair is returned. With from unknown (seq 0 and
// known false), it returns the log's last entry alone: the position to
// start from.
func (s *Subscriber) readLog(ctx context.Context, channel string, from position, known bool, to uint64, limit int) ([]logEntry, error) {
	key := logOf(channel)
	var cmd *redis.XMessageSliceCmd
	switch {
	case !known:
		cmd = s.own.reader().XRevRangeN(ctx, key, "+", "-", 1)
	case to == 0:
		cmd = s.own.reader().XRangeN(ctx, key, id(from.seq), "+", int64(limit)+1)
	default:
		cmd = s.own.reader().XRangeN(ctx, key, id(from.seq), id(to), int64(limit)+1)
	}
	return logEntries(cmd, channel, from, known, limit)
}

// logEntries checks the entries that cmd read from channel's log, as
// readLog describes.
func logEntries(cmd *redis.XMessageSliceCmd, channel string, from position, known bool, limit int) ([]logEntry, error) {
	key := logOf(channel)
	msgs, err := cmd.Result()
	if err != nil {
		return nil, fmt.Errorf("invalidate: read the log %q: %w", key, err)
	}
	entries := make([]logEntry, 0, len(msgs))
	for _, m := range msgs {
		seq, err := strconv.ParseUint(strings.TrimSuffix(m.ID, "-0"), 10, 64)
		payload, ok := m.Values["m"].(string)
		if err != nil || !ok {
			return nil, fmt.Errorf("%w: entry %q of %q is not one of a log", errCannotRepair, m.ID, key)
		}
		entries = append(entries, logEntry{seq: seq, payload: payload})
	}
	if !known {
		return entries, nil
	}
	switch {
	case len(entries) > limit:
		return nil, fmt.Errorf("%w: more than %d missed on %q", errCannotRepair, limit, channel)
	case from.seq == 0:
		if len(entries) > 0 && entries[0].seq != 1 {
			return nil, fmt.Errorf("%w: %q was trimmed past its start", errCannotRepair, key)
		}
		return entries, nil
	case len(entries) == 0 || entries[0].seq != from.seq || fingerprint(entries[0].payload) != from.sum:
		return nil, fmt.Errorf("%w: %q no longer holds the last message applied (trimmed, or recreated)", errCannotRepair, key)
	}
	return entries[1:], nil
}

// id is the stream ID of position seq.
func id(seq uint64) string { return strconv.FormatUint(seq, 10) + "-0" }

// repairReq is the read-back of one channel.
type repairReq struct {
	channel string
	from    position
	known   bool
}

// repairLink reads back, in one round trip per node, what the link's
// channels of namespace missed since their positions, hands the messages
// to OnMessage, and moves the positions on. It reports whether every
// channel was repaired: false means the owner must purge what it kept of
// the namespace (a channel whose position is unknown, a log trimmed past
// it or recreated, more than RepairLimit missed, a read that failed). A
// channel whose position is unknown gets the log's last one.
func (lp *loop) repairLink(namespace string) bool {
	l, s := lp.l, lp.l.s
	chans := l.channels(namespace)
	reqs := make([]repairReq, 0, len(chans))
	for _, ch := range chans {
		pos, known := s.positions.get(ch)
		reqs = append(reqs, repairReq{channel: ch, from: pos, known: known})
	}
	ctx, cancel := context.WithTimeout(l.ctx, max(s.opts.HealthCheck, time.Second))
	defer cancel()
	results := s.readLogs(ctx, reqs)
	var restart []string
	for i, r := range results {
		ch := reqs[i].channel
		if r.err != nil || !reqs[i].known {
			if r.err != nil {
				s.log.Info("invalidate: cannot replay the missed messages; the namespace is purged",
					"namespace", namespace, "channel", ch, "error", r.err)
			}
			restart = append(restart, ch)
			continue
		}
		lp.replay(namespace, ch, r.entries)
	}
	s.restart(ctx, restart)
	return len(restart) == 0
}

// replay hands the messages read back from channel's log to OnMessage and
// moves its position to the last.
func (lp *loop) replay(namespace, channel string, entries []logEntry) {
	s := lp.l.s
	for _, e := range entries {
		if m, err := Decode([]byte(e.payload)); err == nil {
			s.repaired.Add(1)
			s.callback(func() { s.opts.OnMessage(namespace, m) })
		}
		s.positions.set(channel, position{seq: e.seq, sum: fingerprint(e.payload)})
	}
}

// restart gives each of channels the position of its log's last message,
// or of an empty log, so that its next gap can be repaired, reading them
// in one pipeline (one round trip per node). A channel whose log cannot be
// read keeps no position.
func (s *Subscriber) restart(ctx context.Context, channels []string) {
	if len(channels) == 0 {
		return
	}
	cmds := make([]*redis.XMessageSliceCmd, len(channels))
	pipe := s.own.reader().Pipeline()
	for i, ch := range channels {
		cmds[i] = pipe.XRevRangeN(ctx, logOf(ch), "+", "-", 1)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, ch := range channels {
		entries, err := logEntries(cmds[i], ch, position{}, false, 1)
		switch {
		case err != nil:
			s.positions.forget(ch)
		case len(entries) == 0:
			s.positions.set(ch, position{})
		default:
			e := entries[0]
			s.positions.set(ch, position{seq: e.seq, sum: fingerprint(e.payload)})
		}
	}
}

// readResult is the outcome of one repairReq.
type readResult struct {
	entries []logEntry
	err     error
}

// readLogs runs the reqs whose position is known in two pipelines, one
// round trip per node each: it reads their logs' counters first, so that a
// channel that missed more than RepairLimit messages (or whose counter is
// behind its position: a log recreated) fails without reading its log,
// then reads the logs of the others.
func (s *Subscriber) readLogs(ctx context.Context, reqs []repairReq) []readResult {
	out := make([]readResult, len(reqs))
	limit := s.opts.RepairLimit
	counters, marks := make([]*redis.StringCmd, len(reqs)), make([]*redis.StringCmd, len(reqs))
	pipe := s.own.reader().Pipeline()
	for i, r := range reqs {
		if r.known {
			counters[i] = pipe.Get(ctx, seqOf(r.channel))
			marks[i] = pipe.Get(ctx, seqOf(r.channel)+unloggedSuffix)
		}
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	reads := make([]*redis.XMessageSliceCmd, len(reqs))
	pipe = s.own.reader().Pipeline()
	for i, r := range reqs {
		if counters[i] == nil {
			continue
		}
		if out[i].err = missedWithin(counters[i], marks[i], r, limit); out[i].err == nil {
			reads[i] = pipe.XRangeN(ctx, logOf(r.channel), id(r.from.seq), "+", int64(limit)+1)
		}
	}
	_, _ = pipe.Exec(ctx)
	for i, cmd := range reads {
		if cmd != nil {
			out[i].entries, out[i].err = logEntries(cmd, reqs[i].channel, reqs[i].from, true, limit)
		}
	}
	return out
}

// seqOf returns the key of the counter of channel's log.
func seqOf(channel string) string {
	return seqPrefix + strings.TrimPrefix(channel, channelPrefix)
}

// missedWithin checks the counter of r's log and its unlogged mark, read by
// cmd and mark: an error unless at most limit messages were logged since
// r's position, and none that takes no position was published since.
func missedWithin(cmd, mark *redis.StringCmd, r repairReq, limit int) error {
	if at, err := mark.Uint64(); err == nil && at >= r.from.seq {
		return fmt.Errorf("%w: a message that takes no position was published on %q since the last position applied", errCannotRepair, r.channel)
	} else if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("invalidate: read the unlogged mark of %q: %w", r.channel, err)
	}
	seq, err := cmd.Uint64()
	switch {
	case errors.Is(err, redis.Nil):
		seq = 0 // no counter: nothing logged since the log was made (or lost)
	case err != nil:
		return fmt.Errorf("invalidate: read the counter of %q: %w", r.channel, err)
	}
	switch {
	case seq < r.from.seq:
		return fmt.Errorf("%w: the counter of %q is behind the last position applied (recreated)", errCannotRepair, r.channel)
	case seq-r.from.seq > uint64(limit):
		return fmt.Errorf("%w: %d missed on %q, more than %d", errCannotRepair, seq-r.from.seq, r.channel, limit)
	}
	return nil
}

// positioned applies the position of m, a message of channel whose bytes
// were payload, and reports whether messages were missed before it (a
// gap): then they are read back and replayed first, and if they cannot
// be, it returns an error, and the owner must purge the namespace.
func (lp *loop) positioned(namespace, channel string, m Message, payload string) error {
	s := lp.l.s
	pos, known := s.positions.get(channel)
	next := position{seq: m.Seq, sum: fingerprint(payload)}
	switch {
	case !known || m.Seq == pos.seq+1:
		s.positions.set(channel, next)
		return nil
	case m.Seq <= pos.seq: // read back already, or a duplicate
		return nil
	case m.Seq-1-pos.seq > uint64(s.opts.RepairLimit):
		s.positions.set(channel, next)
		return fmt.Errorf("%w: %d missed on %q, more than %d", errCannotRepair, m.Seq-1-pos.seq, channel, s.opts.RepairLimit)
	}
	ctx, cancel := context.WithTimeout(lp.l.ctx, max(s.opts.HealthCheck, time.Second))
	defer cancel()
	entries, err := s.readLog(ctx, channel, pos, true, m.Seq-1, s.opts.RepairLimit)
	if err == nil {
		s.gaps.Add(1)
		lp.replay(namespace, channel, entries)
		if p, _ := s.positions.get(channel); p.seq == m.Seq-1 {
			s.positions.set(channel, next)
			return nil
		}
		err = fmt.Errorf("%w: the log of %q lacks positions %d to %d", errCannotRepair, channel, pos.seq+1, m.Seq-1)
	}
	s.positions.set(channel, next)
	return err
}

// unlogged is told that a message without a position was heard on
// namespace: its writer (a release before the log, or another program that
// publishes a version 1 or 2 message) logs nothing, so what it writes while
// a connection is down cannot be read back. From then on, until the
// Subscriber closes, a loss on the namespace is purged, not repaired.
func (s *Subscriber) unlogged(namespace string) {
	s.mu.Lock()
	rec := s.names[namespace]
	first := rec != nil && !rec.unlogged
	if first {
		rec.unlogged = true
	}
	s.mu.Unlock()
	if first {
		s.log.Info("invalidate: a writer of the namespace logs nothing; a lost subscription will be purged, not repaired",
			slog.String("namespace", namespace))
	}
}

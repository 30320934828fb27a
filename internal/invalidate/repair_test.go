package invalidate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// logWriter writes to a namespace's log as the write script does (the
// counter, then the entry at its position), and publishes the message or
// not: a message not published is one the Subscriber missed.
type logWriter struct {
	t      *testing.T
	c      *redis.Client
	ns     string
	origin Origin
}

func (w logWriter) write(publish bool) {
	w.t.Helper()
	ctx := context.Background()
	seq, err := w.c.Incr(ctx, SeqKey(w.ns, -1)).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	msg := Message{Origin: w.origin, Keys: []string{"k"}, Seq: uint64(seq)}.AppendVersion(nil, Version)
	args := &redis.XAddArgs{Stream: LogKey(w.ns, -1), ID: fmt.Sprintf("%d-0", seq), Values: []any{"m", msg}}
	if err := w.c.XAdd(ctx, args).Err(); err != nil {
		w.t.Fatal(err)
	}
	if publish {
		if err := w.c.Publish(ctx, Channel(w.ns), msg).Err(); err != nil {
			w.t.Fatal(err)
		}
	}
}

// calls returns how many times the server ran command (INFO commandstats).
func calls(t *testing.T, c *redis.Client, command string) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+command+":calls="); ok {
			n, _, _ := strings.Cut(rest, ",")
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("INFO commandstats: %q", line)
			}
			return v
		}
	}
	return 0
}

// More than RepairLimit messages missed is a purge decided from the
// positions alone: the log is not read (it could hold RepairLimit
// entries, all for nothing), on a live channel whose positions jump as
// after a loss. Under the limit, the loss is repaired from the log.
func TestOverRepairLimitReadsNoLog(t *testing.T) {
	s := redistest.NewReal(t)
	ns := s.Namespace
	r := newRecorder()
	opts := r.options(ns)
	opts.Repair, opts.RepairLimit, opts.MaxBackoff = true, 5, 20*time.Millisecond
	start(t, s.NewClient("sub"), opts)
	r.nextStateOn(t, Subscribed, ns)
	w := logWriter{t: t, c: s.Client, ns: ns, origin: NewOrigin()}
	w.write(true)
	r.nextDelivery(t) // the Subscriber knows the position

	x0 := calls(t, s.Client, "xrange")
	for range 10 {
		w.write(false)
	}
	w.write(true)
	r.nextStateOn(t, Gap, ns)
	r.nextDelivery(t)
	if x := calls(t, s.Client, "xrange") - x0; x != 0 {
		t.Errorf("a jump of 11 positions with RepairLimit 5: the log was read %d times; want none", x)
	}

	x0 = calls(t, s.Client, "xrange")
	for range 10 {
		w.write(false)
	}
	s.KillPubSub("sub")
	r.nextState(t, Broken, wait)
	r.nextStateOn(t, Subscribed, ns) // a purge
	if x := calls(t, s.Client, "xrange") - x0; x != 0 {
		t.Errorf("10 missed over a loss with RepairLimit 5: the log was read %d times; want none", x)
	}

	for range 3 {
		w.write(false)
	}
	s.KillPubSub("sub")
	r.nextState(t, Broken, wait)
	r.nextStateOn(t, Repaired, ns)
	for range 3 {
		r.nextDelivery(t)
	}
}

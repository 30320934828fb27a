package main

import (
	"context"
	"log"
	"os"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// goRedisLog is go-redis's logger in the bench (main installs it): go-redis
// logs every failed dial, which a scenario that stops its own server on
// purpose would print by the thousand. While quiet is above 0 those lines
// are dropped (and counted); every other line goes to stderr as go-redis
// would print it.
var goRedisLog = &quietDialLog{out: log.New(os.Stderr, "redis: ", log.LstdFlags)}

type quietDialLog struct {
	out     *log.Logger
	quiet   atomic.Int32
	dropped atomic.Int64
}

func (l *quietDialLog) Printf(_ context.Context, format string, v ...any) {
	if l.quiet.Load() > 0 && strings.Contains(format, "failed to dial") {
		l.dropped.Add(1)
		return
	}
	l.out.Printf(format, v...)
}

// installGoRedisLog makes goRedisLog go-redis's logger.
func installGoRedisLog() { redis.SetLogger(goRedisLog) }

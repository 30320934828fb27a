//go:build !linux

package faults

import "time"

// nanosleep is time.Sleep where the bench has no raw nanosleep.
func nanosleep(d time.Duration) { time.Sleep(d) }

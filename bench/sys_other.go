//go:build !linux

package main

import (
	"errors"
	"time"
)

// rawNanosleep says whether nanosleep is the raw system call.
const rawNanosleep = false

// nanosleep falls back to time.Sleep where the raw system call is not wired
// up; the report says so.
func nanosleep(d time.Duration) { time.Sleep(d) }

// cpuTime is only measured on Linux.
func cpuTime() (time.Duration, error) {
	return 0, errors.New("bench: process CPU time is only measured on Linux")
}

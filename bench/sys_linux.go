package main

import (
	"syscall"
	"time"
	"unsafe"
)

// rawNanosleep says whether nanosleep is the raw system call.
const rawNanosleep = true

// nanosleep sleeps d in a raw nanosleep(2) system call, not time.Sleep: the
// goroutine keeps its thread and its P for the sleep, and the runtime hands
// the P to another thread only when its monitor notices (from 20µs to 10ms
// later), as it would for a goroutine blocked in any other system call.
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_, _, _ = syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

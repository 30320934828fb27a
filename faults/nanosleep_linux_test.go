package faults

import (
	"syscall"
	"time"
	"unsafe"
)

// nanosleep sleeps d in a raw nanosleep(2) system call, not time.Sleep: the
// goroutine keeps its thread and its P for the sleep, and the runtime hands
// the P on only when its monitor notices (from 20µs to 10ms later), as for
// a goroutine blocked in any other system call.
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_, _, _ = syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}

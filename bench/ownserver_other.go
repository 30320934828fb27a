//go:build !linux

package main

import "syscall"

// childProcAttr is nil where Pdeathsig does not exist: a killed run may
// leave its own redis-server behind (Close stops it otherwise).
func childProcAttr() *syscall.SysProcAttr { return nil }

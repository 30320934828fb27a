package main

import "syscall"

// childProcAttr has a child process killed when the bench dies, so that a
// killed run leaves no redis-server of its own behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

//go:build unix

package main

import (
	"os"
	"syscall"
)

// tryLock takes f's advisory lock, exclusive or shared, without waiting.
// The kernel releases it when the process ends, crash included.
func tryLock(f *os.File, exclusive bool) bool {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB) == nil
}

// lockShared turns the exclusive lock this process holds into a shared one.
func lockShared(f *os.File) bool { return syscall.Flock(int(f.Fd()), syscall.LOCK_SH) == nil }

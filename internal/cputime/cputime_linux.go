// Package cputime reads the CPU time of the calling OS thread or of the whole
// process, for benchmarks that compare two operations on a loaded machine:
// unlike wall time, it does not count the time other processes ran instead.
// It is benchmark support only.
package cputime

import (
	"syscall"
	"time"
	"unsafe"
)

// Thread is the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID). The caller locks its goroutine to the thread
// (runtime.LockOSThread).
func Thread() time.Duration { return clock(3) } // CLOCK_THREAD_CPUTIME_ID

// Process is the CPU time of the whole process, every thread
// (CLOCK_PROCESS_CPUTIME_ID): what a request costs the server when the
// work is spread over goroutines, such as a group committer's.
func Process() time.Duration { return clock(2) } // CLOCK_PROCESS_CPUTIME_ID

// clock reads the POSIX clock id with clock_gettime.
func clock(id uintptr) time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

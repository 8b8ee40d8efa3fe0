//go:build unix

package bff

import (
	"os"
	"syscall"
)

// lockStore takes an exclusive advisory lock on f without waiting. The
// kernel releases it when f is closed or the process ends, crash included.
func lockStore(f *os.File) (locked bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == syscall.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}

// storeLocking reports whether lockStore can keep a second process out:
// the session cache relies on it.
const storeLocking = true

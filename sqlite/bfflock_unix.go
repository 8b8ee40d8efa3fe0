//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// lockBFF takes an exclusive advisory lock on f without waiting. The
// kernel releases it when f is closed or the process ends, crash included.
func lockBFF(f *os.File) (locked bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == syscall.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}

// bffLocking reports whether lockBFF can keep a second process out:
// the session cache relies on it.
const bffLocking = true

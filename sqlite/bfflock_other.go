//go:build !unix

package sqlite

import "os"

// Without flock a second process on the same file cannot be detected, so
// the SQLite store runs without its session cache (bffLocking).
func lockBFF(*os.File) (bool, error) { return true, nil }

const bffLocking = false

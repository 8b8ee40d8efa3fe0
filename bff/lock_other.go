//go:build !unix

package bff

import "os"

// Without flock a second process on the same file cannot be detected, so
// the SQLite store runs without its session cache (storeLocking).
func lockStore(*os.File) (bool, error) { return true, nil }

const storeLocking = false

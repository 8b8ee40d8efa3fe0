//go:build !race

package sqlite

// raceDetector: see race_test.go.
const raceDetector = false

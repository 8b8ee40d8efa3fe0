//go:build race

package sqlite

// raceDetector: tests that only measure volume (not concurrency) skip
// under -race, where they take ten times as long and prove nothing more.
const raceDetector = true

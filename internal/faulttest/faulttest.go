// Package faulttest starts the real dependencies latch runs on, PostgreSQL
// and Redis, as private processes a test may stop, pause and restart, and a
// TCP proxy that slows or cuts the connections through it. The machine's
// shared servers are never touched: every process here listens on a free
// loopback port and lives in a temporary directory removed at cleanup.
//
// The suite is switched on by LATCH_TEST_FAULTS=1 (Require), since it needs
// the PostgreSQL server binaries and redis-server installed.
package faulttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// EnvVar switches the fault suite on.
const EnvVar = "LATCH_TEST_FAULTS"

// Require skips t unless LATCH_TEST_FAULTS=1, naming what the suite needs.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvVar) != "1" {
		t.Skipf("set %s=1 to run the fault suite (it starts its own PostgreSQL from /usr/lib/postgresql/*/bin and its own redis-server, and stops, pauses and restarts them)", EnvVar)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pgBin finds a PostgreSQL server program of the newest installed major
// version.
func pgBin(t testing.TB, name string) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(dirs) == 0 {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		t.Fatalf("faulttest: %s not found under /usr/lib/postgresql/*/bin or on PATH: install the PostgreSQL server package", name)
	}
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) < majorOf(dirs[j]) })
	return dirs[len(dirs)-1]
}

func majorOf(path string) int {
	n, _ := strconv.Atoi(strings.Split(strings.TrimPrefix(path, "/usr/lib/postgresql/"), "/")[0])
	return n
}

// children returns the PIDs whose parent is pid, from /proc.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields
		// after its closing parenthesis are "state ppid ...".
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// signalTree sends sig to pid and its children (PostgreSQL's backends and
// auxiliary processes are the postmaster's children).
func signalTree(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	for _, c := range children(pid) {
		_ = syscall.Kill(c, sig) // a backend may have just exited
	}
	return nil
}

package faulttest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a private PostgreSQL cluster: initdb'd into a temporary
// directory, listening on a free loopback port, trust authentication for
// the role postgres, database "latch".
type Postgres struct {
	t    testing.TB
	Port int
	dir  string // cluster data directory
	log  string
	// asUser runs a command as the postgres OS user when the test runs as
	// root, which initdb and postgres refuse.
	asUser []string
}

// StartPostgres initdbs and starts a cluster, and stops it (immediate
// shutdown) and removes it at cleanup.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	base, err := os.MkdirTemp("", "latch-faultpg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &Postgres{t: t, Port: FreePort(t), dir: filepath.Join(base, "data"), log: filepath.Join(base, "postgres.log")}
	t.Cleanup(func() {
		pg.Resume() // a paused server ignores the stop
		pg.ctl("stop", "-m", "immediate")
		os.RemoveAll(base)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("faulttest: running as root, and initdb refuses root: there is no postgres OS user to run it as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	pg.run(pgBin(t, "initdb"), "-D", pg.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	pg.Start()
	pg.run(pgBin(t, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", "latch")
	return pg
}

// URL is the database's URL. connect_timeout bounds each connection
// attempt, as an operator's URL should.
func (pg *Postgres) URL() string { return pg.URLAt(pg.Port) }

// URLAt is the database's URL on another port (a proxy's).
func (pg *Postgres) URLAt(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/latch?sslmode=disable&connect_timeout=3", port)
}

func (pg *Postgres) run(args ...string) string {
	pg.t.Helper()
	full := append(append([]string{}, pg.asUser...), args...)
	c := exec.Command(full[0], full[1:]...)
	out, err := c.CombinedOutput()
	if err != nil {
		pg.t.Fatalf("faulttest: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (pg *Postgres) ctl(args ...string) error {
	full := append(append([]string{}, pg.asUser...), pgBin(pg.t, "pg_ctl"))
	full = append(full, "-D", pg.dir)
	full = append(full, args...)
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Start starts the server and waits until it accepts connections.
func (pg *Postgres) Start() {
	pg.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=100", pg.Port)
	if err := pg.ctl("start", "-w", "-t", "60", "-l", pg.log, "-o", opts); err != nil {
		b, _ := os.ReadFile(pg.log)
		pg.t.Fatalf("faulttest: start PostgreSQL: %v\n%s", err, b)
	}
}

// StopFast stops the server with a fast shutdown: sessions are ended,
// committed work is kept.
func (pg *Postgres) StopFast() {
	pg.t.Helper()
	if err := pg.ctl("stop", "-w", "-m", "fast"); err != nil {
		pg.t.Fatalf("faulttest: %v", err)
	}
}

// postmaster returns the server's PID from postmaster.pid.
func (pg *Postgres) postmaster() int {
	b, err := os.ReadFile(filepath.Join(pg.dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// Pause stops (SIGSTOP) the postmaster and all its backends: the server
// still accepts TCP connections (the kernel does) but answers nothing, as
// a hung host or a full disk would.
func (pg *Postgres) Pause() {
	pg.t.Helper()
	if err := signalTree(pg.postmaster(), syscall.SIGSTOP); err != nil {
		pg.t.Fatalf("faulttest: pause PostgreSQL: %v", err)
	}
}

// Resume continues a paused server. Backends started meanwhile (none can
// be: the postmaster was stopped) need nothing.
func (pg *Postgres) Resume() {
	if pid := pg.postmaster(); pid != 0 {
		_ = signalTree(pid, syscall.SIGCONT)
	}
}

// WaitReady waits until the server accepts a query or d passes.
func (pg *Postgres) WaitReady(d time.Duration) error {
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		full := append(append([]string{}, pg.asUser...), pgBin(pg.t, "pg_isready"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-t", "1")
		if err = exec.Command(full[0], full[1:]...).Run(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("faulttest: PostgreSQL not ready after %v: %v", d, err)
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/doctor"
	"github.com/latch-auth/latch/internal/pgtest"
	"github.com/latch-auth/latch/sqlite"
)

// doctorReport is latch doctor --json's output.
type doctorReport struct {
	Findings []doctor.Finding `json:"findings"`
	ExitCode int              `json:"exit_code"`
}

// doctorRun runs latch doctor --json over dir with args and returns its
// findings and exit code, failing on output that is not the report.
func doctorRun(t *testing.T, dir string, args ...string) ([]doctor.Finding, int) {
	t.Helper()
	all := append([]string{"doctor", "--json", "--data-dir", dir}, args...)
	out, errOut, code := runCLICode(t, nil, all...)
	var r doctorReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("latch %s: exit %d, output is not the JSON report: %v\nstdout: %s\nstderr: %s", strings.Join(all, " "), code, err, out, errOut)
	}
	if r.ExitCode != code {
		t.Fatalf("exit_code %d in the report, process exited %d", r.ExitCode, code)
	}
	for _, f := range r.Findings {
		if f.ID == "" || f.Subject == "" || f.Seen == "" || f.Why == "" || f.Source == "" || f.Fix == "" {
			t.Errorf("finding with an empty field: %+v", f)
		}
	}
	return r.Findings, code
}

// want asserts that fs holds a finding id of severity sev whose subject
// or seen value mentions about, and that the exit code is code.
func want(t *testing.T, fs []doctor.Finding, code int, wantCode int, id string, sev doctor.Severity, about string) {
	t.Helper()
	i := slices.IndexFunc(fs, func(f doctor.Finding) bool {
		return f.ID == id && f.Severity == sev && strings.Contains(f.Subject+" "+f.Seen, about)
	})
	if i < 0 {
		t.Fatalf("no %s %s finding about %q in %+v", sev, id, about, fs)
	}
	if code != wantCode {
		t.Fatalf("exit %d, want %d (findings %+v)", code, wantCode, fs)
	}
}

func ids(fs []doctor.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

const httpsIssuer = "https://auth.example.com"

// TestDoctor_CleanDeployment: a migrated data directory with an https
// issuer and the defaults has nothing to fix; the only finding is the
// informational one that no backup was recorded.
func TestDoctor_CleanDeployment(t *testing.T) {
	dir := migratedDir(t)
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	if code != 0 || !slices.Equal(ids(fs), []string{"BACKUP_NONE"}) {
		t.Fatalf("clean deployment: exit %d, findings %+v", code, fs)
	}
}

// TestDoctor_CleanDev: a data directory made by latch serve --dev gives
// only what --dev implies, each as info: the http issuer, the KEK beside
// the database, no backup. The dev client (client_credentials with
// latch:admin and latch:introspect) is not interactive and the only
// client: no finding.
func TestDoctor_CleanDev(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	p.Stop(t)
	fs, code := doctorRun(t, dir, "--dev")
	got := ids(fs)
	slices.Sort(got)
	if code != 0 || !slices.Equal(got, []string{"BACKUP_NONE", "ISSUER_HTTP", "KEK_BESIDE_DATA"}) {
		t.Fatalf("clean --dev: exit %d, findings %+v", code, fs)
	}
	for _, f := range fs {
		if f.Severity != doctor.Info {
			t.Errorf("--dev finding %s is %s, want info", f.ID, f.Severity)
		}
	}
	// The issuer doctor judged is the one serve recorded, with its port.
	want(t, fs, code, 0, "ISSUER_HTTP", doctor.Info, p.Issuer)
	// The text report explains each one.
	out, _, _ := runCLICode(t, nil, "doctor", "--dev", "--data-dir", dir)
	if strings.Count(out, "why: ") != 3 || strings.Count(out, "fix: ") != 3 || !strings.Contains(out, "0 high, 0 warning(s), 3 info") {
		t.Fatalf("text report:\n%s", out)
	}
}

// TestDoctor_WritesNothing: doctor leaves the database's bytes, the data
// directory's lock and a missing directory as they were.
func TestDoctor_WritesNothing(t *testing.T) {
	dir := migratedDir(t)
	db := filepath.Join(dir, "latch.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	doctorRun(t, dir, "--issuer", httpsIssuer)
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) {
		t.Fatal("doctor changed latch.db")
	}
	for _, name := range []string{"serve.lock", "latch.db-wal", "latch.db-shm"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Fatalf("doctor created %s", name)
		}
	}
	missing := filepath.Join(t.TempDir(), "none")
	_, errOut, code := runCLICode(t, nil, "doctor", "--data-dir", missing, "--issuer", httpsIssuer)
	if code != 1 || !strings.Contains(errOut, "no latch database") {
		t.Fatalf("missing directory: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("doctor created the missing data directory")
	}
	if _, _, code := runCLICode(t, nil, "doctor", "--data-dir", dir); code != 2 {
		t.Fatalf("no --issuer without --dev: exit %d, want 2 (usage)", code)
	}
}

func TestDoctor_IssuerHTTP(t *testing.T) {
	dir := migratedDir(t)
	fs, code := doctorRun(t, dir, "--issuer", "http://auth.example.com")
	want(t, fs, code, 2, "ISSUER_HTTP", doctor.High, "http://auth.example.com")
	fs, code = doctorRun(t, dir, "--issuer", "http://auth.example.com", "--insecure-allow-http")
	want(t, fs, code, 1, "ISSUER_HTTP", doctor.Warning, "http://auth.example.com")
}

func TestDoctor_KEK(t *testing.T) {
	dir := migratedDir(t)
	kek := filepath.Join(t.TempDir(), "kek")
	runCLI(t, "keys", "new-kek", "--out", kek)
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--kek-file", kek); code != 0 {
		t.Fatalf("KEK 0600 outside the data directory: exit %d, %+v", code, fs)
	}
	if err := os.Chmod(kek, 0o644); err != nil {
		t.Fatal(err)
	}
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--kek-file", kek)
	want(t, fs, code, 2, "KEK_FILE_MODE", doctor.High, "0644")

	// DATA_DIR/kek is the one found without --kek-file or LATCH_KEK.
	runCLI(t, "keys", "new-kek", "--out", filepath.Join(dir, "kek"))
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "KEK_BESIDE_DATA", doctor.Warning, dir)
	// With the key in LATCH_KEK there is no file to judge.
	b, _ := os.ReadFile(kek)
	out, _, code := runCLICode(t, []string{"LATCH_KEK=" + strings.TrimSpace(string(b))}, "doctor", "--data-dir", dir, "--issuer", httpsIssuer)
	if code != 0 || strings.Contains(out, "KEK_") {
		t.Fatalf("LATCH_KEK: exit %d\n%s", code, out)
	}
}

// plant opens the data directory's store as latch serve does and runs fn
// on it: for records the CLI would not make (a key signing for months).
func plant(t *testing.T, dir string, fn func(latch.Store)) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(db)
}

func TestDoctor_Keys(t *testing.T) {
	dir := migratedDir(t)
	old := time.Now().Add(-200 * 24 * time.Hour).Truncate(time.Second)
	plant(t, dir, func(db latch.Store) {
		pub, priv := make([]byte, 32), make([]byte, 32)
		rand.Read(pub)
		rand.Read(priv)
		if err := db.CreateKey(context.Background(), &latch.Key{ID: "k-old", Algorithm: latch.ES256, Public: pub, Private: priv, CreatedAt: old, ActiveAt: old}); err != nil {
			t.Fatal(err)
		}
	})
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "KEY_OLD", doctor.Warning, "k-old")
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--key-max-age", "6000h"); code != 0 {
		t.Fatalf("a key within --key-max-age: exit %d, %+v", code, fs)
	}
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer, "--key-max-age", "6000h", "--key-prepublish", "5m")
	want(t, fs, code, 1, "KEY_PREPUBLISH_SHORT", doctor.Warning, "--key-prepublish")
}

func TestDoctor_AccessTokenTTL(t *testing.T) {
	dir := migratedDir(t)
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--access-token-ttl", "12h")
	want(t, fs, code, 2, "ACCESS_TTL_LONG", doctor.High, "12h")
	createClient(t, dir, "--id", "slow", "--access-token-ttl", "30m")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "CLIENT_ACCESS_TTL_LONG", doctor.Warning, "client slow")
}

func TestDoctor_Refresh(t *testing.T) {
	dir := migratedDir(t)
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--refresh-token-ttl", "1440h")
	want(t, fs, code, 1, "REFRESH_TTL_LONG", doctor.Warning, "60d")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer, "--refresh-family-max-age", "4320h")
	want(t, fs, code, 1, "REFRESH_FAMILY_LONG", doctor.Warning, "180d")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer, "--refresh-grace", "45s")
	want(t, fs, code, 1, "REFRESH_GRACE_LONG", doctor.Warning, "45s")
	createClient(t, dir, "--id", "app", "--grant", "client_credentials", "--refresh-token-ttl", "2000h")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "CLIENT_REFRESH_TTL_LONG", doctor.Warning, "client app")
}

func TestDoctor_AdminInteractive(t *testing.T) {
	dir := migratedDir(t)
	createClient(t, dir, "--id", "portal", "--grant", "authorization_code", "--redirect-uri", "https://app.example.com/cb",
		"--scope", "openid latch:admin", "--audience", "urn:latch:admin")
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--breached-passwords", os.DevNull)
	want(t, fs, code, 2, "ADMIN_INTERACTIVE", doctor.High, "client portal")
}

func TestDoctor_ExchangeAudience(t *testing.T) {
	dir := migratedDir(t)
	createClient(t, dir, "--id", "gw", "--grant", "urn:ietf:params:oauth:grant-type:token-exchange", "--audience", "orders")
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer); code != 0 {
		t.Fatalf("a gateway for one API: exit %d, %+v", code, fs)
	}
	runCLI(t, "client", "update", "gw", "--data-dir", dir, "--audience", "orders,billing")
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "EXCHANGE_AUDIENCE", doctor.Warning, "orders,billing")
	runCLI(t, "client", "update", "gw", "--data-dir", dir, "--audience", "orders,urn:latch:admin")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 2, "EXCHANGE_AUDIENCE", doctor.High, "urn:latch:admin")
}

func TestDoctor_IntrospectionWide(t *testing.T) {
	dir := migratedDir(t)
	createClient(t, dir, "--id", "orders-rs", "--scope", "latch:introspect", "--audience", "orders")
	createClient(t, dir, "--id", "app1", "--audience", "orders")
	createClient(t, dir, "--id", "app2", "--audience", "billing")
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer); code != 0 {
		t.Fatalf("a resource server introspecting its own audience: exit %d, %+v", code, fs)
	}
	runCLI(t, "client", "update", "orders-rs", "--data-dir", dir, "--audience", "orders,billing")
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "INTROSPECT_WIDE", doctor.Warning, "client orders-rs")
}

func TestDoctor_PasswordPolicy(t *testing.T) {
	dir := migratedDir(t)
	// No users and no login client: passwords are not in use.
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--min-password-length", "6"); code != 0 {
		t.Fatalf("no passwords in use: exit %d, %+v", code, fs)
	}
	createClient(t, dir, "--id", "web", "--grant", "authorization_code", "--redirect-uri", "https://app.example.com/cb", "--scope", "openid")
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "PASSWORD_NO_BREACH_LIST", doctor.Warning, "--breached-passwords")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer, "--breached-passwords", os.DevNull, "--min-password-length", "12")
	want(t, fs, code, 1, "PASSWORD_SHORT", doctor.Warning, "12")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer, "--breached-passwords", os.DevNull, "--min-password-length", "6")
	want(t, fs, code, 2, "PASSWORD_SHORT", doctor.High, "6")
}

func TestDoctor_PasswordGrant(t *testing.T) {
	dir := migratedDir(t)
	createClient(t, dir, "--id", "legacy", "--grant", "password", "--first-party", "--scope", "openid")
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--breached-passwords", os.DevNull)
	want(t, fs, code, 1, "PASSWORD_GRANT", doctor.Warning, "client legacy")
}

func TestDoctor_SQLiteNotWAL(t *testing.T) {
	dir := migratedDir(t)
	db, err := sql.Open("sqlite", filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode=DELETE`).Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("journal_mode=DELETE: %q %v", mode, err)
	}
	db.Close()
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "SQLITE_NOT_WAL", doctor.Warning, "rollback")
}

// TestFilesystem_LocalIsNotNetwork: the statfs classification doctor's
// SQLITE_NETWORK_FS rests on calls a test directory local. (A network
// filesystem cannot be mounted in a test; doctor_test.go feeds one.)
func TestFilesystem_LocalIsNotNetwork(t *testing.T) {
	name, network := filesystem(t.TempDir())
	if network || (name != "local" && name != "") {
		t.Fatalf("filesystem of a temp dir: %q network=%v", name, network)
	}
}

func TestDoctor_TrustedProxies(t *testing.T) {
	dir := migratedDir(t)
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--trusted-proxies", "0.0.0.0/0")
	want(t, fs, code, 2, "TRUSTED_PROXIES_WIDE", doctor.High, "0.0.0.0/0")
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer, "--trusted-proxies", "10.0.0.0/8")
	want(t, fs, code, 1, "TRUSTED_PROXIES_WIDE", doctor.Warning, "10.0.0.0/8")
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer, "--trusted-proxies", "10.0.3.7,10.0.3.8"); code != 0 {
		t.Fatalf("two proxy addresses: exit %d, %+v", code, fs)
	}
}

func TestDoctor_Backup(t *testing.T) {
	dir := migratedDir(t)
	write := func(at time.Time) {
		b, _ := json.Marshal(map[string]any{"at": at.UTC().Format(time.RFC3339), "to": "/backups/latch.json", "bytes": 1234})
		if err := os.WriteFile(filepath.Join(dir, "backup.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(time.Now().Add(-time.Hour))
	if fs, code := doctorRun(t, dir, "--issuer", httpsIssuer); code != 0 || len(fs) != 0 {
		t.Fatalf("a backup an hour old: exit %d, %+v", code, fs)
	}
	write(time.Now().Add(-50 * time.Hour))
	fs, code := doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 1, "BACKUP_OLD", doctor.Warning, "/backups/latch.json")
	write(time.Now().Add(-10 * 24 * time.Hour))
	fs, code = doctorRun(t, dir, "--issuer", httpsIssuer)
	want(t, fs, code, 2, "BACKUP_OLD", doctor.High, "10d")
	os.WriteFile(filepath.Join(dir, "backup.json"), []byte("{not json"), 0o600)
	if _, errOut, code := runCLICode(t, nil, "doctor", "--data-dir", dir, "--issuer", httpsIssuer); code != 1 || !strings.Contains(errOut, "backup.json") {
		t.Fatalf("a garbled backup record: exit %d, %s", code, errOut)
	}
}

// TestDoctor_Probe runs doctor against a running --dev server: over
// loopback, http and /metrics are not findings; a server whose issuer is
// not the configured one is; an address nothing listens on is reported,
// not a failure of doctor.
func TestDoctor_Probe(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	fs, code := doctorRun(t, dir, "--dev", "--url", p.Issuer)
	if code != 0 || slices.ContainsFunc(fs, func(f doctor.Finding) bool { return strings.HasPrefix(f.ID, "PROBE_") || f.ID == "METRICS_EXPOSED" }) {
		t.Fatalf("probe of the running dev server on loopback: exit %d, %+v", code, fs)
	}
	fs, code = doctorRun(t, dir, "--dev", "--issuer", "http://127.0.0.1:1", "--url", p.Issuer)
	want(t, fs, code, 1, "PROBE_ISSUER_MISMATCH", doctor.Warning, p.Issuer)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	fs, code = doctorRun(t, dir, "--dev", "--url", closed)
	want(t, fs, code, 1, "PROBE_UNREACHABLE", doctor.Warning, closed)
}

// TestDoctor_PostgreSQL: two latch serve nodes on one PostgreSQL schema
// without --redis-url are seen (by their connections' application_name);
// the database's clock is this host's, so no skew is reported.
func TestDoctor_PostgreSQL(t *testing.T) {
	base := pgtest.URL(t, "latch doctor on PostgreSQL")
	dbURL := pgtest.Schema(t, base, "latch_doctor")
	dir := t.TempDir()
	issuer := "http://127.0.0.1:1"
	startLatch(t, dir, "--database-url", dbURL, "--issuer", issuer)
	fs, code := doctorRun(t, dir, "--dev", "--database-url", dbURL, "--issuer", issuer)
	if code != 0 || slices.Contains(ids(fs), "NODES_WITHOUT_REDIS") || slices.Contains(ids(fs), "CLOCK_SKEW") {
		t.Fatalf("one node: exit %d, %+v", code, fs)
	}
	startLatch(t, dir, "--database-url", dbURL, "--issuer", issuer)
	fs, code = doctorRun(t, dir, "--dev", "--database-url", dbURL, "--issuer", issuer)
	want(t, fs, code, 1, "NODES_WITHOUT_REDIS", doctor.Warning, "2 server nodes")
	if fs, _ := doctorRun(t, dir, "--dev", "--database-url", dbURL, "--issuer", issuer, "--redis-url", "redis://127.0.0.1:6379/0"); slices.Contains(ids(fs), "NODES_WITHOUT_REDIS") {
		t.Fatalf("with --redis-url: %+v", fs)
	}
	// Another deployment's nodes in the same database are not counted.
	if fs, _ := doctorRun(t, dir, "--dev", "--database-url", dbURL, "--issuer", "http://127.0.0.1:2"); slices.Contains(ids(fs), "NODES_WITHOUT_REDIS") {
		t.Fatalf("other issuer: %+v", fs)
	}
	// doctor does not migrate: an empty schema is refused, not filled.
	empty := pgtest.Schema(t, base, "latch_doctor_empty")
	_, errOut, code := runCLICode(t, nil, "doctor", "--data-dir", dir, "--database-url", empty, "--issuer", httpsIssuer)
	if code != 1 || !strings.Contains(errOut, "latch migrate") {
		t.Fatalf("empty schema: exit %d, %s", code, errOut)
	}

}

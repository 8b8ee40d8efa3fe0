package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/sqlite"
)

// runCLIStdin runs the latch binary with stdin and returns stdout, stderr
// and the exit code. Nothing it prints may hold a panic.
func runCLIStdin(t testing.TB, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(latchBin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run latch: %v", err)
	}
	if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
		t.Fatalf("latch %s panicked:\n%s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), stderr.String(), code
}

// userJSON is the part of `latch user ... --json` the tests read.
type userJSON struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Disabled      bool     `json:"disabled"`
	HasPassword   bool     `json:"has_password"`
	Roles         []string `json:"roles"`
	Groups        []string `json:"groups"`
	SessionsEnded *int     `json:"sessions_ended"`
}

func mustUserJSON(t testing.TB, out string) userJSON {
	t.Helper()
	var u userJSON
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatalf("user JSON %q: %v", out, err)
	}
	return u
}

// openData opens the data directory's database as the server would.
func openData(t testing.TB, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addSession(t testing.TB, db *sqlite.DB, userID, raw string) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(raw))
	now := time.Now()
	s := &latch.Session{IDHash: h[:], UserID: userID, AuthTime: now, CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return h[:]
}

func TestUserCLI_Lifecycle(t *testing.T) {
	dir := migratedDir(t)
	d := []string{"--data-dir", dir}
	const pw = "correct horse battery staple"

	out, errOut, code := runCLIStdin(t, pw+"\n", append([]string{"user", "create", "Alice", "--password-stdin", "--role", "admin", "--group", "eng,ops", "--json"}, d...)...)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	alice := mustUserJSON(t, out)
	if alice.ID == "" || alice.Username != "Alice" || !alice.HasPassword || alice.Disabled ||
		strings.Join(alice.Roles, ",") != "admin" || strings.Join(alice.Groups, ",") != "eng,ops" {
		t.Fatalf("created %+v", alice)
	}
	// stdin that is not a terminal is read without --password-stdin.
	if _, errOut, code := runCLIStdin(t, "bob's own password\n", append([]string{"user", "create", "bob"}, d...)...); code != 0 {
		t.Fatalf("create bob from piped stdin: exit %d: %s", code, errOut)
	}

	db := openData(t, dir)
	u, err := db.User(context.Background(), alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := password.Verify(pw, u.PasswordHash); !ok || strings.Contains(u.PasswordHash, pw) {
		t.Fatalf("stored %q does not verify the password from stdin (without its newline)", u.PasswordHash)
	}

	out = runCLI(t, append([]string{"user", "list", "--json"}, d...)...)
	var list []userJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[0].Username != "Alice" || list[1].Username != "bob" {
		t.Fatalf("list: %v %s", err, out)
	}
	for _, ref := range []string{alice.ID, "alice", "ALICE"} {
		if got := mustUserJSON(t, runCLI(t, append([]string{"user", "get", ref, "--json"}, d...)...)); got.ID != alice.ID {
			t.Errorf("get %s: %+v", ref, got)
		}
	}
	if out := runCLI(t, append([]string{"user", "list"}, d...)...); !strings.Contains(out, "Alice") || !strings.Contains(out, "enabled") {
		t.Errorf("list table: %s", out)
	}

	// Disabling ends the user's login sessions, from the CLI too.
	s := addSession(t, db, alice.ID, "alice-browser")
	got := mustUserJSON(t, runCLI(t, append([]string{"user", "disable", "alice", "--json"}, d...)...))
	if !got.Disabled || got.SessionsEnded == nil || *got.SessionsEnded != 1 {
		t.Fatalf("disable: %+v", got)
	}
	if _, err := db.Session(context.Background(), s); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("session after disable: %v", err)
	}
	if got := mustUserJSON(t, runCLI(t, append([]string{"user", "enable", "alice", "--json"}, d...)...)); got.Disabled {
		t.Errorf("enable: %+v", got)
	}

	s = addSession(t, db, alice.ID, "alice-browser-2")
	if out, errOut, code := runCLIStdin(t, "a brand new passphrase\n", append([]string{"user", "set-password", "alice"}, d...)...); code != 0 || !strings.Contains(out, "ended 1 login session") {
		t.Fatalf("set-password: exit %d: %s %s", code, out, errOut)
	}
	u, _ = db.User(context.Background(), alice.ID)
	if ok, _ := password.Verify("a brand new passphrase", u.PasswordHash); !ok {
		t.Error("new password not stored")
	}
	if _, err := db.Session(context.Background(), s); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("session after set-password: %v", err)
	}

	got = mustUserJSON(t, runCLI(t, append([]string{"user", "set-roles", "alice", "--role", "viewer", "--json"}, d...)...))
	if strings.Join(got.Roles, ",") != "viewer" || strings.Join(got.Groups, ",") != "eng,ops" {
		t.Errorf("set-roles --role keeps groups: %+v", got)
	}

	runCLI(t, append([]string{"user", "delete", "alice"}, d...)...)
	if _, errOut, code := runCLICode(t, nil, append([]string{"user", "get", "alice"}, d...)...); code != 1 || !strings.Contains(errOut, "no user") {
		t.Errorf("get after delete: exit %d %s", code, errOut)
	}
}

func TestUserCLI_RefusesBadInput(t *testing.T) {
	dir := migratedDir(t)
	d := []string{"--data-dir", dir}
	runCLIStdin(t, "alice's own password\n", append([]string{"user", "create", "alice"}, d...)...)

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		// There is no flag to pass a password on the command line.
		{"password on argv", "", []string{"user", "create", "carol", "--password", "hunter2hunter2"}, 2, "unknown flag"},
		{"password on argv, set-password", "", []string{"user", "set-password", "alice", "--password=hunter2hunter2"}, 2, "unknown flag"},
		{"no username", "pw\n", []string{"user", "create"}, 2, "takes 1 argument"},
		{"two usernames", "pw\n", []string{"user", "create", "a", "b"}, 2, "takes 1 argument"},
		{"set-roles without flags", "", []string{"user", "set-roles", "alice"}, 2, "--role or --group"},
		{"bad argon2 memory", "long enough passphrase\n", []string{"user", "create", "carol", "--argon2-memory", "1"}, 2, "memory"},
		{"no password", "", []string{"user", "create", "carol"}, 1, "no password on stdin"},
		{"two lines", "first line\nsecond\n", []string{"user", "create", "carol"}, 1, "more than one line"},
		{"too short", "fourteen chars\n", []string{"user", "create", "carol"}, 1, "shorter than 15"},
		{"the username", "carol-the-admin\n", []string{"user", "create", "carol-the-admin"}, 1, "must not be the username"},
		{"configured minimum", "nineteen characters\n", []string{"user", "create", "carol", "--min-password-length", "20"}, 1, "shorter than 20"},
		{"common password, built-in list", "Qwertyuiop12345\n", []string{"user", "create", "carol"}, 1, "common passwords"},
		{"same name, other case", "long enough passphrase\n", []string{"user", "create", "ALICE"}, 1, "taken"},
		{"bad username", "long enough passphrase\n", []string{"user", "create", "car ol"}, 1, "space"},
		{"bad role", "long enough passphrase\n", []string{"user", "create", "carol", "--role", "ädmin"}, 1, "role"},
		{"unknown user", "", []string{"user", "disable", "nobody"}, 1, "no user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLIStdin(t, tc.stdin, append(tc.args, d...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.want)
			}
			if pw := strings.TrimSpace(tc.stdin); len(pw) > 4 && strings.Contains(out+errOut, pw) {
				t.Errorf("the password appears in the output: %s %s", out, errOut)
			}
		})
	}
	out := runCLI(t, append([]string{"user", "list", "--json"}, d...)...)
	if strings.Count(out, `"id"`) != 1 {
		t.Errorf("refused commands created users: %s", out)
	}
}

func TestUserCLI_Argon2Flags(t *testing.T) {
	dir := migratedDir(t)
	out, errOut, code := runCLIStdin(t, "long enough passphrase\n", "user", "create", "dave", "--json", "--data-dir", dir,
		"--argon2-memory", "1024", "--argon2-iterations", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	u, err := openData(t, dir).User(context.Background(), mustUserJSON(t, out).ID)
	if err != nil {
		t.Fatal(err)
	}
	want := password.DefaultParams
	want.Memory, want.Iterations = 1024, 3
	if p, err := password.ParamsOf(u.PasswordHash); err != nil || p != want {
		t.Errorf("params %+v, %v; want %+v", p, err, want)
	}
}

// A user created with the CLI while the server runs is the admin API's
// user: one store, one set of rules.
func TestUserCLI_AdminAPISeesCLIUsers(t *testing.T) {
	p := startLatch(t, t.TempDir())
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	out, errOut, code := runCLIStdin(t, "erin's own password\n", "user", "create", "erin", "--json", "--data-dir", p.DataDir)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	erin := mustUserJSON(t, out)
	tok := issueToken(t, p, dev, url.Values{"scope": {"latch:admin"}, "audience": {"urn:latch:admin"}})

	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.URL(path), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := call("GET", "/admin/v1/users/erin", ""); code != 200 || !strings.Contains(body, erin.ID) || strings.Contains(body, "argon2") {
		t.Fatalf("admin get: %d %s", code, body)
	}
	if code, body := call("POST", "/admin/v1/users/erin/password", `{"password":"short"}`); code != 400 || !strings.Contains(body, "shorter than 15") {
		t.Errorf("admin weak password: %d %s", code, body)
	}
	if code, body := call("POST", "/admin/v1/users/erin/disable", ""); code != 200 {
		t.Errorf("admin disable: %d %s", code, body)
	}
	if got := mustUserJSON(t, runCLI(t, "user", "get", "erin", "--json", "--data-dir", p.DataDir)); !got.Disabled {
		t.Errorf("CLI does not see the admin API's disable: %+v", got)
	}
}

func TestUserCreate_BreachedPasswordsFile(t *testing.T) {
	dir := migratedDir(t)
	list := filepath.Join(dir, "breached.txt")
	// SHA-1 of "password1234567", in Have I Been Pwned's format.
	sum := sha1.Sum([]byte("password1234567"))
	if err := os.WriteFile(list, []byte("correct horse battery staple\n"+strings.ToUpper(hex.EncodeToString(sum[:]))+":42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"correct horse battery staple", "password1234567"} {
		_, errOut, code := runCLIStdin(t, pw+"\n", "user", "create", "alice", "--password-stdin", "--data-dir", dir, "--breached-passwords", list)
		if code != 1 || !strings.Contains(errOut, "breached") {
			t.Fatalf("listed password %q: exit %d, stderr %q", pw, code, errOut)
		}
	}
	if _, errOut, code := runCLIStdin(t, "an unlisted long passphrase\n", "user", "create", "alice", "--password-stdin",
		"--data-dir", dir, "--breached-passwords", list); code != 0 {
		t.Fatalf("unlisted password: exit %d, %s", code, errOut)
	}
	if _, errOut, code := runCLIStdin(t, "x\n", "user", "set-password", "alice", "--password-stdin", "--data-dir", dir,
		"--breached-passwords", filepath.Join(dir, "missing.txt")); code != 1 || !strings.Contains(errOut, "--breached-passwords") {
		t.Fatalf("missing list file: exit %d, stderr %q", code, errOut)
	}
}

package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/server"
)

// cheapParams keep the tests fast; the policy does not depend on the cost.
var cheapParams = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func newUsers(e *env) *registry.Users {
	return &registry.Users{Store: e.db, Params: cheapParams, Now: e.clock.Now}
}

func mustCreateUser(tb testing.TB, m *registry.Users, spec registry.UserSpec) *registry.UserView {
	tb.Helper()
	v, err := m.Create(context.Background(), spec)
	if err != nil {
		tb.Fatalf("create user %q: %v", spec.Username, err)
	}
	return v
}

// mustSession stores a login session of userID directly in the store.
func mustSession(tb testing.TB, e *env, userID, raw string) []byte {
	tb.Helper()
	h := sha256.Sum256([]byte(raw))
	now := e.clock.Now()
	s := &latch.Session{IDHash: h[:], UserID: userID, AuthTime: now, CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(8 * time.Hour)}
	if err := e.db.CreateSession(context.Background(), s); err != nil {
		tb.Fatalf("create session: %v", err)
	}
	return h[:]
}

func sessionExists(tb testing.TB, e *env, idHash []byte) bool {
	tb.Helper()
	_, err := e.db.Session(context.Background(), idHash)
	if err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
		tb.Fatal(err)
	}
	return err == nil
}

func TestUsers_PasswordPolicy(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name     string
		min      int
		username string
		password string
		ok       bool
	}{
		{"empty", 0, "alice", "", false},
		{"fourteen characters", 0, "alice", "abcdefghijklmn", false},
		{"fifteen characters", 0, "alice", "abcdefghijklmno", true},
		// No composition rules (ASVS 5.0 V6.2, NIST SP 800-63B-4): one letter
		// repeated is accepted, and so are spaces and any Unicode.
		{"no composition rules", 0, "alice", "aaaaaaaaaaaaaaa", true},
		{"spaces and emoji", 0, "alice", "correct horse 🐎 staple", true},
		{"length counts characters, not bytes", 0, "alice", strings.Repeat("é", 14), false}, // 14 characters, 28 bytes
		{"fifteen multi-byte characters", 0, "alice", strings.Repeat("é", 15), true},
		{"max bytes", 0, "alice", strings.Repeat("x", password.MaxPasswordLen), true},
		{"over max bytes", 0, "alice", strings.Repeat("x", password.MaxPasswordLen+1), false},
		{"not UTF-8", 0, "alice", "abcdefghijklmno\xff", false},
		{"the username", 0, "alice-the-smith", "alice-the-smith", false},
		{"the username in another case", 0, "alice-the-smith", "Alice-The-Smith", false},
		{"configured minimum refuses", 8, "alice", "seven c", false},
		{"configured minimum accepts", 8, "alice", "eight ch", true},
		// The built-in list of common passwords is on by default.
		{"common password", 8, "alice", "password1", false},
		{"common password in another case", 8, "alice", "Password1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUsers(e)
			m.MinPasswordLen = tc.min
			err := m.CheckPassword(tc.username, tc.password)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckPassword = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if latch.ErrorCode(err) != latch.EINVALID {
					t.Errorf("code %q, want EINVALID", latch.ErrorCode(err))
				}
				if len(tc.password) >= 4 && strings.Contains(err.Error(), tc.password) {
					t.Errorf("error %q repeats the password", err)
				}
			}
		})
	}
}

func TestUsers_Create_StoresArgon2idHashNotPassword(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	const pw = "correct horse battery staple"
	v := mustCreateUser(t, m, registry.UserSpec{Username: "Alice", Password: pw, Roles: []string{"admin", "admin", "ops"}, Groups: []string{"eng"}})
	if v.Username != "Alice" || !v.HasPassword || v.Disabled || v.PasswordChangedAt == nil {
		t.Fatalf("view %+v", v)
	}
	if strings.Join(v.Roles, ",") != "admin,ops" || strings.Join(v.Groups, ",") != "eng" {
		t.Errorf("roles %v groups %v: want duplicates dropped, order kept", v.Roles, v.Groups)
	}
	u, err := e.db.User(context.Background(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u.PasswordHash, pw) || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("stored %q", u.PasswordHash)
	}
	if p, err := password.ParamsOf(u.PasswordHash); err != nil || p != cheapParams {
		t.Errorf("stored hash parameters %+v, %v; want the configured %+v", p, err, cheapParams)
	}
	if ok, err := password.Verify(pw, u.PasswordHash); !ok || err != nil {
		t.Errorf("Verify = %v, %v", ok, err)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "argon2") || strings.Contains(string(b), pw) {
		t.Errorf("view holds the hash or password: %s", b)
	}
}

func TestUsers_DefaultParams_AreOWASPs(t *testing.T) {
	e := newEnv(t)
	m := &registry.Users{Store: e.db}
	v := mustCreateUser(t, m, registry.UserSpec{Username: "bob", Password: "correct horse battery"})
	u, err := e.db.User(context.Background(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := password.ParamsOf(u.PasswordHash); p != password.DefaultParams {
		t.Errorf("params %+v, want password.DefaultParams", p)
	}
}

func TestUsers_Create_UsernameConflictIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	mustCreateUser(t, m, registry.UserSpec{Username: "alice", Password: "password number one"})
	_, err := m.Create(context.Background(), registry.UserSpec{Username: "ALICE", Password: "password number two"})
	if latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("second ALICE: %v, want ECONFLICT", err)
	}
}

func TestUsers_Create_Refused(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	first := mustCreateUser(t, m, registry.UserSpec{Username: "first", Password: "password number one"})
	for name, spec := range map[string]registry.UserSpec{
		"empty username":         {Username: "", Password: "password number one"},
		"username with a space":  {Username: "a b", Password: "password number one"},
		"zero-width space":       {Username: "a\u200bb", Password: "password number one"},
		"weak password":          {Username: "carol", Password: "short"},
		"role with a space":      {Username: "carol", Password: "password number one", Roles: []string{"a b"}},
		"empty group":            {Username: "carol", Password: "password number one", Groups: []string{""}},
		"role with a quote":      {Username: "carol", Password: "password number one", Roles: []string{`a"b`}},
		"non-ASCII role":         {Username: "carol", Password: "password number one", Roles: []string{"ädmin"}},
		"role too long":          {Username: "carol", Password: "password number one", Roles: []string{strings.Repeat("r", 129)}},
		"another user's ID name": {Username: first.ID, Password: "password number one"},
	} {
		_, err := m.Create(context.Background(), spec)
		if code := latch.ErrorCode(err); code != latch.EINVALID && code != latch.ECONFLICT {
			t.Errorf("%s: %v, want EINVALID or ECONFLICT", name, err)
		}
	}
	if vs, _ := m.List(context.Background()); len(vs) != 1 {
		t.Errorf("%d users stored, want only the first", len(vs))
	}
}

func TestUsers_Get_ByIDOrUsername(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	v := mustCreateUser(t, m, registry.UserSpec{Username: "Dave", Password: "password number one"})
	for _, ref := range []string{v.ID, "Dave", "dave", "DAVE"} {
		if got, err := m.Get(context.Background(), ref); err != nil || got.ID != v.ID {
			t.Errorf("Get(%q) = %+v, %v", ref, got, err)
		}
	}
	if _, err := m.Get(context.Background(), "nobody"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("unknown user: %v, want ENOTFOUND", err)
	}
}

// Every change that weakens the trust in a user's login sessions ends
// them all, and no other user's (security invariant 6).
func TestUsers_Changes_EndTheUsersSessions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(m *registry.Users, ref string) (*registry.UserView, error)
	}{
		{"set-password", func(m *registry.Users, ref string) (*registry.UserView, error) {
			return m.SetPassword(ctx, ref, "a brand new passphrase")
		}},
		{"disable", func(m *registry.Users, ref string) (*registry.UserView, error) { return m.SetDisabled(ctx, ref, true) }},
		{"set-roles", func(m *registry.Users, ref string) (*registry.UserView, error) {
			return m.SetRoles(ctx, ref, []string{"viewer"}, nil)
		}},
		{"delete", func(m *registry.Users, ref string) (*registry.UserView, error) { return m.Delete(ctx, ref) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m := newUsers(e)
			alice := mustCreateUser(t, m, registry.UserSpec{Username: "alice", Password: "the old password", Roles: []string{"admin"}})
			bob := mustCreateUser(t, m, registry.UserSpec{Username: "bob", Password: "bob's own password"})
			a1, a2 := mustSession(t, e, alice.ID, "a1"), mustSession(t, e, alice.ID, "a2")
			b1 := mustSession(t, e, bob.ID, "b1")

			v, err := tc.change(m, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if v.SessionsEnded == nil || *v.SessionsEnded != 2 {
				t.Errorf("sessions_ended = %v, want 2", v.SessionsEnded)
			}
			if sessionExists(t, e, a1) || sessionExists(t, e, a2) {
				t.Error("alice's sessions survived")
			}
			if !sessionExists(t, e, b1) {
				t.Error("bob's session was ended too")
			}
		})
	}
}

func TestUsers_SetPassword_ReplacesHash(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	v := mustCreateUser(t, m, registry.UserSpec{Username: "alice", Password: "the old password"})
	e.clock.Advance(time.Minute)
	if _, err := m.SetPassword(context.Background(), v.ID, "alice"); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("password = username: %v, want EINVALID", err)
	}
	got, err := m.SetPassword(context.Background(), v.ID, "the new password")
	if err != nil {
		t.Fatal(err)
	}
	if !got.PasswordChangedAt.After(*v.PasswordChangedAt) {
		t.Errorf("password_changed_at %v not after %v", got.PasswordChangedAt, v.PasswordChangedAt)
	}
	u, _ := e.db.User(context.Background(), v.ID)
	if ok, _ := password.Verify("the old password", u.PasswordHash); ok {
		t.Error("old password still verifies")
	}
	if ok, _ := password.Verify("the new password", u.PasswordHash); !ok {
		t.Error("new password does not verify")
	}
}

func TestUsers_Enable_KeepsSessions(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	v := mustCreateUser(t, m, registry.UserSpec{Username: "alice", Password: "the old password", Disabled: true})
	if !v.Disabled {
		t.Fatal("created enabled")
	}
	s := mustSession(t, e, v.ID, "s")
	got, err := m.SetDisabled(context.Background(), "alice", false)
	if err != nil || got.Disabled || got.SessionsEnded != nil {
		t.Fatalf("enable: %+v, %v", got, err)
	}
	if !sessionExists(t, e, s) {
		t.Error("enable ended a session")
	}
	if got, _ := m.SetDisabled(context.Background(), "alice", true); !got.Disabled {
		t.Error("disable did not disable")
	}
	if u, _ := e.db.User(context.Background(), v.ID); !u.Disabled {
		t.Error("disabled flag not stored")
	}
}

func TestUsers_Delete(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	v := mustCreateUser(t, m, registry.UserSpec{Username: "alice", Password: "the old password"})
	if _, err := m.Delete(context.Background(), "ALICE"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.User(context.Background(), v.ID); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("after delete: %v", err)
	}
	if _, err := m.Delete(context.Background(), "alice"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("second delete: %v, want ENOTFOUND", err)
	}
}

func TestConfig_RefusesBadPasswordSettings(t *testing.T) {
	e := newEnv(t)
	for name, mutate := range map[string]func(*server.Config){
		"memory too small": func(c *server.Config) {
			c.PasswordParams = password.Params{Memory: 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
		},
		"short salt": func(c *server.Config) {
			c.PasswordParams = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 8, KeyLen: 32}
		},
		"negative min":       func(c *server.Config) { c.MinPasswordLen = -1 },
		"min over max bytes": func(c *server.Config) { c.MinPasswordLen = password.MaxPasswordLen + 1 },
	} {
		cfg := server.Config{Issuer: testIssuer, Store: e.db, Keys: e.keys}
		mutate(&cfg)
		if _, err := server.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAdminAPI_Users(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.PasswordParams = cheapParams })
	admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
	tok := e.token(admin, url.Values{"scope": {"latch:admin"}, "audience": {latch.AudienceAdmin}})
	const pw = "correct horse battery staple"
	var bodies []string
	call := func(method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		var r *http.Request
		if body == "" {
			r = httptest.NewRequest(method, path, nil)
		} else {
			r = httptest.NewRequest(method, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		bodies = append(bodies, w.Body.String())
		return w
	}

	for _, path := range []string{"/admin/v1/users", "/admin/v1/users/x"} {
		if w := e.get(path, nil); w.Code != 401 || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s without a token: %d %s", path, w.Code, w.Body)
		}
	}

	w := call("POST", "/admin/v1/users", `{"username":"Alice","password":"`+pw+`","roles":["admin"],"groups":["eng"]}`)
	var alice registry.UserView
	mustJSON(t, w.Body.Bytes(), &alice)
	if w.Code != 201 || alice.ID == "" || alice.Username != "Alice" || !alice.HasPassword {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	for name, tc := range map[string]struct {
		body   string
		status int
	}{
		"same name, other case": {`{"username":"alice","password":"yet another password"}`, 409},
		"weak password":         {`{"username":"bob","password":"short"}`, 400},
		"password is username":  {`{"username":"bob","password":"BOB"}`, 400},
		"no password":           {`{"username":"bob"}`, 400},
		"bad role":              {`{"username":"bob","password":"` + pw + `","roles":["a b"]}`, 400},
		"unknown field":         {`{"username":"bob","password":"` + pw + `","admin":true}`, 400},
	} {
		if w := call("POST", "/admin/v1/users", tc.body); w.Code != tc.status || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem+json", name, w.Code, w.Body, tc.status)
		}
	}

	if w := call("GET", "/admin/v1/users", ""); w.Code != 200 || !strings.Contains(w.Body.String(), alice.ID) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	for _, ref := range []string{alice.ID, "alice"} {
		if w := call("GET", "/admin/v1/users/"+ref, ""); w.Code != 200 || !strings.Contains(w.Body.String(), alice.ID) {
			t.Errorf("get %s: %d %s", ref, w.Code, w.Body)
		}
	}
	if w := call("GET", "/admin/v1/users/nobody", ""); w.Code != 404 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("get unknown: %d %s", w.Code, w.Body)
	}

	s := mustSession(t, e, alice.ID, "s1")
	w = call("POST", "/admin/v1/users/alice/password", `{"password":"a brand new password"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"sessions_ended":1`) || sessionExists(t, e, s) {
		t.Fatalf("set password: %d %s", w.Code, w.Body)
	}
	u, _ := e.db.User(context.Background(), alice.ID)
	if ok, _ := password.Verify("a brand new password", u.PasswordHash); !ok {
		t.Error("new password not stored")
	}
	if w := call("POST", "/admin/v1/users/alice/password", `{"password":"short"}`); w.Code != 400 {
		t.Errorf("weak new password: %d %s", w.Code, w.Body)
	}

	s = mustSession(t, e, alice.ID, "s2")
	if w := call("POST", "/admin/v1/users/alice/disable", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"disabled":true`) || sessionExists(t, e, s) {
		t.Errorf("disable: %d %s", w.Code, w.Body)
	}
	if w := call("POST", "/admin/v1/users/alice/enable", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"disabled":false`) {
		t.Errorf("enable: %d %s", w.Code, w.Body)
	}

	s = mustSession(t, e, alice.ID, "s3")
	w = call("PUT", "/admin/v1/users/alice/roles", `{"roles":["viewer"],"groups":[]}`)
	var changed registry.UserView
	mustJSON(t, w.Body.Bytes(), &changed)
	if w.Code != 200 || strings.Join(changed.Roles, ",") != "viewer" || len(changed.Groups) != 0 || sessionExists(t, e, s) {
		t.Errorf("set roles: %d %s", w.Code, w.Body)
	}
	if w := call("PUT", "/admin/v1/users/alice/roles", `{"roles":["bad role"]}`); w.Code != 400 {
		t.Errorf("bad role: %d %s", w.Code, w.Body)
	}

	s = mustSession(t, e, alice.ID, "s3b")
	w = call("PUT", "/admin/v1/users/alice/profile", `{"email":"Alice@Example.com","email_verified":true,"name":"Alice L","locale":"en-GB"}`)
	var prof registry.UserView
	mustJSON(t, w.Body.Bytes(), &prof)
	if w.Code != 200 || prof.Email != "Alice@Example.com" || !prof.EmailVerified || prof.Name != "Alice L" || prof.Locale != "en-GB" || !sessionExists(t, e, s) {
		t.Errorf("set profile: %d %s (a profile change ends no session)", w.Code, w.Body)
	}
	if w := call("GET", "/admin/v1/users/alice@example.COM", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"Alice L"`) || strings.Contains(w.Body.String(), `"given_name"`) {
		t.Errorf("get by email: %d %s", w.Code, w.Body)
	}
	for body, status := range map[string]int{
		`{"email":"not an address"}`:              400,
		`{"email_verified":true}`:                 400,
		`{"picture":"javascript:alert(1)"}`:       400,
		`{"zoneinfo":"Nowhere/Special"}`:          400,
		`{"email":"a@example.com","phone":"123"}`: 400,
	} {
		if w := call("PUT", "/admin/v1/users/alice/profile", body); w.Code != status {
			t.Errorf("profile %s: %d %s, want %d", body, w.Code, w.Body, status)
		}
	}
	w = call("POST", "/admin/v1/users", `{"username":"bob","password":"`+pw+`","email":"ALICE@example.com"}`)
	if w.Code != 409 {
		t.Errorf("create with another's email: %d %s", w.Code, w.Body)
	}
	w = call("POST", "/admin/v1/users", `{"username":"bob","password":"`+pw+`","email":"bob@example.com","family_name":"Builder"}`)
	if w.Code != 201 || !strings.Contains(w.Body.String(), `"family_name":"Builder"`) {
		t.Errorf("create with a profile: %d %s", w.Code, w.Body)
	}

	s = mustSession(t, e, alice.ID, "s4")
	if w := call("DELETE", "/admin/v1/users/"+alice.ID, ""); w.Code != 200 || sessionExists(t, e, s) {
		t.Errorf("delete: %d %s", w.Code, w.Body)
	}
	if w := call("GET", "/admin/v1/users/"+alice.ID, ""); w.Code != 404 {
		t.Errorf("get after delete: %d", w.Code)
	}
	if w := call("DELETE", "/admin/v1/users/"+alice.ID, ""); w.Code != 404 {
		t.Errorf("delete again: %d", w.Code)
	}

	for _, b := range bodies {
		if strings.Contains(b, "argon2") || strings.Contains(b, pw) || strings.Contains(b, "brand new") {
			t.Errorf("an answer holds a password or hash: %s", b)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, pw) || strings.Contains(logs, "brand new") {
		t.Errorf("a password was logged:\n%s", logs)
	}
}

// With no list configured, the built-in list of common passwords is
// checked, in any case, and the default minimum is NIST SP 800-63B-4's 15
// characters for a single-factor password.
func TestUsers_CommonPasswordsAndShortOnes_RefusedByDefault(t *testing.T) {
	e := newEnv(t)
	m := newUsers(e)
	if registry.DefaultMinPasswordLen != 15 {
		t.Fatalf("DefaultMinPasswordLen = %d, want 15", registry.DefaultMinPasswordLen)
	}
	if err := m.CheckPassword("alice", "fourteen chars"); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("14 characters: %v, want EINVALID", err)
	}
	m.MinPasswordLen = 8
	for _, pw := range []string{"password1", "Password1", "qwertyuiop", "1qaz2wsx3edc4rfv", "iloveyou"} {
		err := m.CheckPassword("alice", pw)
		if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "common") {
			t.Errorf("%q: %v, want EINVALID (common password)", pw, err)
		}
	}
	if err := m.CheckPassword("alice", "tangerine rowboat"); err != nil {
		t.Errorf("an unlisted passphrase: %v", err)
	}
}

func TestUsers_RefusesBlocklistedPasswords(t *testing.T) {
	e := newEnv(t)
	b, err := password.LoadBlocklist(strings.NewReader("correct horse battery staple\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := newUsers(e)
	m.Blocklist = b
	_, err = m.Create(context.Background(), registry.UserSpec{Username: "alice", Password: "correct horse battery staple"})
	if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "breached") {
		t.Fatalf("create with a listed password: %v", err)
	}
	v := mustCreateUser(t, m, registry.UserSpec{Username: "alice", Password: "an unlisted long passphrase"})
	if _, err := m.SetPassword(context.Background(), v.ID, "correct horse battery staple"); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("set a listed password: %v", err)
	}
}

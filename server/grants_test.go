package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// The tests in this file drive the token endpoint's authorization_code and
// refresh_token grants with codes written straight into the store, as
// /oauth2/authorize writes them; authorize_test.go covers the endpoint
// that issues them, through the login page.

const testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 Appendix B

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// webClient registers a confidential first-party client for the code and
// refresh grants.
func (e *env) webClient(mutate ...func(*registry.ClientSpec)) creds {
	spec := registry.ClientSpec{Name: "Web", GrantTypes: []string{"authorization_code", "refresh_token"},
		Scope: "openid profile read write", Audiences: []string{"api"},
		RedirectURIs: []string{"https://app.example/cb"}, FirstParty: true}
	for _, m := range mutate {
		m(&spec)
	}
	return e.client(spec)
}

// alice creates a user with roles and groups and returns her id.
func (e *env) alice() string {
	e.t.Helper()
	v := mustCreateUser(e.t, newUsers(e), registry.UserSpec{Username: "alice", Password: "correct horse battery",
		Roles: []string{"admin"}, Groups: []string{"staff"}})
	return v.ID
}

// newCode stores an authorization code as /oauth2/authorize would and
// returns it.
func (e *env) newCode(c creds, userID string, scope ...string) (string, *latch.AuthCode) {
	e.t.Helper()
	raw, err := token.NewSecret(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	fam, _ := token.NewID(nil)
	now := e.clock.Now().Truncate(time.Second)
	if scope == nil {
		scope = []string{"openid", "profile", "read"}
	}
	ac := &latch.AuthCode{Hash: token.Hash(raw), ClientID: c.ID, UserID: userID, SessionID: "sid-1",
		RedirectURI: "https://app.example/cb", Scope: scope, Audience: []string{"api"}, Nonce: "n-0S6_WzA2Mj",
		CodeChallenge: challengeOf(testVerifier), AuthTime: now, FamilyID: fam,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := e.db.CreateCode(context.Background(), ac); err != nil {
		e.t.Fatal(err)
	}
	return raw, ac
}

type tokenResp struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func (e *env) grant(c creds, form url.Values) (int, tokenResp) {
	e.t.Helper()
	w := e.do("/oauth2/token", c, form)
	var tr tokenResp
	mustJSON(e.t, w.Body.Bytes(), &tr)
	return w.Code, tr
}

func (e *env) redeem(c creds, code string) (int, tokenResp) {
	return e.grant(c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {testVerifier}})
}

func (e *env) refresh(c creds, rt string) (int, tokenResp) {
	return e.grant(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// payload decodes the claims of a compact JWS without verifying it.
func payload(t testing.TB, jws string) map[string]any {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jws)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	mustJSON(t, b, &m)
	return m
}

func (e *env) active(c creds, tok string) bool {
	e.t.Helper()
	return strings.HasPrefix(e.introspect(c, tok), `{"active":true`)
}

func TestCodeGrant_IssuesAccessRefreshAndIDToken(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	uid := e.alice()
	code, ac := e.newCode(c, uid)
	status, tr := e.redeem(c, code)
	if status != 200 || tr.AccessToken == "" || !strings.HasPrefix(tr.RefreshToken, token.PrefixRefresh) || tr.IDToken == "" {
		t.Fatalf("redeem: %d %+v", status, tr)
	}
	at := payload(t, tr.AccessToken)
	if at["sub"] != uid || at["client_id"] != c.ID || at["scope"] != "openid profile read" || at["aud"] != "api" {
		t.Errorf("access token claims %v", at)
	}
	if r, _ := at["roles"].([]any); len(r) != 1 || r[0] != "admin" {
		t.Errorf("access token roles %v, want [admin]", at["roles"])
	}
	id := payload(t, tr.IDToken)
	sum := sha256.Sum256([]byte(tr.AccessToken))
	for k, want := range map[string]any{
		"iss": testIssuer, "sub": uid, "aud": c.ID, "azp": c.ID, "nonce": ac.Nonce, "sid": "sid-1",
		"auth_time": float64(ac.AuthTime.Unix()), "preferred_username": "alice",
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]),
	} {
		if id[k] != want {
			t.Errorf("id_token %s = %v, want %v", k, id[k], want)
		}
	}
	if !e.active(c, tr.AccessToken) || !e.active(c, tr.RefreshToken) {
		t.Error("issued tokens do not introspect active")
	}
	// security invariant 2: an ID token is not an access token.
	if e.active(c, tr.IDToken) {
		t.Error("the ID token introspects active")
	}
	if w := e.get("/userinfo", http.Header{"Authorization": {"Bearer " + tr.IDToken}}); w.Code != 401 {
		t.Errorf("userinfo with the ID token: %d", w.Code)
	}
}

func TestCodeGrant_ReusedCode_RevokesEverythingItIssued(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	code, _ := e.newCode(c, e.alice())
	_, first := e.redeem(c, code)
	status, second := e.redeem(c, code)
	if status != 400 || second.Error != "invalid_grant" || second.AccessToken != "" {
		t.Fatalf("second redemption: %d %+v", status, second)
	}
	if e.active(c, first.AccessToken) || e.active(c, first.RefreshToken) {
		t.Error("tokens of the first redemption still active after the code was reused")
	}
	if status, tr := e.refresh(c, first.RefreshToken); status != 400 || tr.Error != "invalid_grant" {
		t.Errorf("refresh after code reuse: %d %+v", status, tr)
	}
}

// TestCodeGrant_ReplayAfterPurge_RevokesWhatItIssued: a code replayed
// minutes after it expired, after the purge has run, is still recognised
// as used and revokes every token its first use issued, down the rotated
// chain (RFC 6749 §4.1.2).
func TestCodeGrant_ReplayAfterPurge_RevokesWhatItIssued(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	code, _ := e.newCode(c, e.alice())
	status, first := e.redeem(c, code)
	if status != 200 {
		t.Fatalf("redeem: %d %+v", status, first)
	}
	e.clock.Advance(time.Minute)
	status, next := e.refresh(c, first.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh: %d %+v", status, next)
	}
	// Past the 60 s code lifetime and the purge interval after it.
	e.clock.Advance(2 * time.Minute)
	if _, err := e.db.PurgeExpired(context.Background(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	status, replay := e.redeem(c, code)
	if status != 400 || replay.Error != "invalid_grant" || replay.AccessToken != "" {
		t.Fatalf("replayed code: %d %+v, want 400 invalid_grant", status, replay)
	}
	for name, tok := range map[string]string{"first access": first.AccessToken, "first refresh": first.RefreshToken,
		"next access": next.AccessToken, "next refresh": next.RefreshToken} {
		if e.active(c, tok) {
			t.Errorf("%s still active after the code was replayed", name)
		}
	}
	if status, _ := e.refresh(c, next.RefreshToken); status != 400 {
		t.Errorf("the newest refresh token still works after the code was replayed: %d", status)
	}
}

func TestCodeGrant_FailedChecksDoNotConsumeTheCode(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	other := e.webClient()
	code, _ := e.newCode(c, e.alice())
	for name, try := range map[string]func() (int, tokenResp){
		"other client": func() (int, tokenResp) { return e.redeem(other, code) },
		"wrong verifier": func() (int, tokenResp) {
			return e.grant(c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {"https://app.example/cb"}, "code_verifier": {strings.Repeat("a", 43)}})
		},
		"short verifier": func() (int, tokenResp) {
			return e.grant(c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {"https://app.example/cb"}, "code_verifier": {testVerifier[:42]}})
		},
		"other redirect": func() (int, tokenResp) {
			return e.grant(c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {"https://app.example/cb2"}, "code_verifier": {testVerifier}})
		},
		"no verifier": func() (int, tokenResp) {
			return e.grant(c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {"https://app.example/cb"}})
		},
	} {
		status, tr := try()
		if status != 400 || (tr.Error != "invalid_grant" && tr.Error != "invalid_request") {
			t.Errorf("%s: %d %+v", name, status, tr)
		}
	}
	if status, tr := e.redeem(c, code); status != 200 {
		t.Fatalf("legitimate redemption after refused attempts: %d %+v", status, tr)
	}
}

func TestCodeGrant_ExpiredUnknownAndUnregisteredClient(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	code, _ := e.newCode(c, e.alice())
	e.clock.Advance(61 * time.Second)
	if status, tr := e.redeem(c, code); status != 400 || tr.Error != "invalid_grant" {
		t.Errorf("expired code: %d %+v", status, tr)
	}
	if status, tr := e.redeem(c, "not-a-code"); status != 400 || tr.Error != "invalid_grant" {
		t.Errorf("unknown code: %d %+v", status, tr)
	}
	cc := e.jwtClient() // client_credentials only
	if status, tr := e.redeem(cc, code); status != 400 || tr.Error != "unauthorized_client" {
		t.Errorf("client without the grant: %d %+v", status, tr)
	}
}

func TestInvariant7_RefreshRotatesAndReuseAfterGraceRevokesTheFamily(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	code, _ := e.newCode(c, e.alice())
	_, t0 := e.redeem(c, code)
	status, t1 := e.refresh(c, t0.RefreshToken)
	if status != 200 || t1.RefreshToken == "" || t1.RefreshToken == t0.RefreshToken || t1.AccessToken == t0.AccessToken {
		t.Fatalf("refresh: %d %+v", status, t1)
	}
	if t1.IDToken == "" || payload(t, t1.IDToken)["nonce"] != nil {
		t.Errorf("refreshed ID token missing or carries a nonce: %q", t1.IDToken)
	}
	// Inside the grace window, the spent token works once more: a retry,
	// which gets a new access token and the same successor.
	e.clock.Advance(5 * time.Second)
	status, t1b := e.refresh(c, t0.RefreshToken)
	if status != 200 || t1b.RefreshToken != t1.RefreshToken || t1b.AccessToken == t1.AccessToken {
		t.Fatalf("retry within grace: %d %+v, want the successor %q again", status, t1b, t1.RefreshToken)
	}
	status, t2 := e.refresh(c, t1.RefreshToken)
	if status != 200 {
		t.Fatalf("successor: %d %+v", status, t2)
	}
	// After the grace window, the spent token is a stolen one.
	e.clock.Advance(10 * time.Second)
	status, reuse := e.refresh(c, t0.RefreshToken)
	if status != 400 || reuse.Error != "invalid_grant" {
		t.Fatalf("reuse after grace: %d %+v", status, reuse)
	}
	for name, tok := range map[string]string{"t0 access": t0.AccessToken, "t1 access": t1.AccessToken,
		"t1b access": t1b.AccessToken, "t2 access": t2.AccessToken, "t1 refresh": t1.RefreshToken, "t2 refresh": t2.RefreshToken} {
		if e.active(c, tok) {
			t.Errorf("%s still active after the family was revoked", name)
		}
	}
	if status, _ := e.refresh(c, t2.RefreshToken); status != 400 {
		t.Errorf("newest refresh token still works after family revocation: %d", status)
	}
}

// TestRefresh_32ConcurrentRefreshesOfOneToken is the race test of
// refreshTokenGrant's grace window. Within it, every concurrent refresh of
// one token succeeds with its own access token and the same successor, so
// exactly one chain lives and nobody is logged out; a replay of the parent
// after the window revokes that chain. With no grace window, exactly one
// succeeds and the reuse by the others revokes the family.
func TestRefresh_32ConcurrentRefreshesOfOneToken(t *testing.T) {
	const callers = 32
	run := func(t *testing.T, grace time.Duration) (ok []tokenResp, failed int, c creds, e *env, t0 tokenResp) {
		e = newEnv(t, func(cfg *server.Config) { cfg.RefreshGrace = grace })
		c = e.webClient()
		code, _ := e.newCode(c, e.alice())
		_, t0 = e.redeem(c, code)
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for range callers {
			wg.Go(func() {
				<-start
				status, tr := e.refresh(c, t0.RefreshToken)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case status == 200:
					ok = append(ok, tr)
				case status == 400 && tr.Error == "invalid_grant":
					failed++
				default:
					t.Errorf("concurrent refresh: %d %+v", status, tr)
				}
			})
		}
		close(start)
		wg.Wait()
		return ok, failed, c, e, t0
	}
	t.Run("WithinGrace_ExactlyOneChainLives_ReplayAfterWindowRevokesIt", func(t *testing.T) {
		ok, failed, c, e, t0 := run(t, 0) // the default, 10s
		if len(ok) != callers || failed != 0 {
			t.Fatalf("%d succeeded, %d failed; want %d, 0", len(ok), failed, callers)
		}
		successors, access := map[string]bool{}, map[string]bool{}
		for _, tr := range ok {
			successors[tr.RefreshToken] = true
			access[tr.AccessToken] = true
		}
		if len(successors) != 1 || len(access) != callers {
			t.Fatalf("%d distinct successors and %d distinct access tokens, want 1 and %d", len(successors), len(access), callers)
		}
		// Each returned refresh token in turn, as each caller would use
		// the one it kept: all lead into one chain, none is refused.
		next := map[string]bool{}
		for i, tr := range ok {
			status, tr2 := e.refresh(c, tr.RefreshToken)
			if status != 200 {
				t.Fatalf("caller %d's successor does not refresh: %d %+v", i, status, tr2)
			}
			next[tr2.RefreshToken] = true
		}
		if len(next) != 1 {
			t.Fatalf("the %d callers' refresh tokens lead to %d chains, want 1", callers, len(next))
		}
		var newest string
		for rt := range next {
			newest = rt
		}
		// Nobody was logged out: every caller's access token works.
		for _, tr := range ok {
			if !e.active(c, tr.AccessToken) {
				t.Fatal("a concurrent caller's access token is inactive")
			}
		}
		// The parent again, 1 s after its window: a thief's replay.
		e.clock.Advance(10*time.Second + time.Second)
		if status, tr := e.refresh(c, t0.RefreshToken); status != 400 || tr.Error != "invalid_grant" {
			t.Fatalf("replay of the parent after the window: %d %+v, want 400 invalid_grant", status, tr)
		}
		if status, _ := e.refresh(c, newest); status != 400 {
			t.Fatalf("the live chain survived a reuse of its parent: %d", status)
		}
		for i, tr := range ok {
			if e.active(c, tr.AccessToken) || e.active(c, tr.RefreshToken) {
				t.Fatalf("caller %d's tokens still active after the family was revoked", i)
			}
		}
	})
	t.Run("NoGrace_ExactlyOneSucceedsAndTheFamilyIsRevoked", func(t *testing.T) {
		ok, failed, c, e, _ := run(t, -1)
		if len(ok) != 1 || failed != callers-1 {
			t.Fatalf("%d succeeded, %d failed; want 1, %d", len(ok), failed, callers-1)
		}
		if status, _ := e.refresh(c, ok[0].RefreshToken); status != 400 {
			t.Fatalf("the winner's successor survived the reuse: %d", status)
		}
	})
}

// TestRefresh_RetryOnAnotherNode_GetsTheSameSuccessor: two servers
// sharing a store and a key-encryption key, each with its own key manager
// as two processes have, derive the same successor, so a retry that a load
// balancer sends to the other node does not fork the family.
func TestRefresh_RetryOnAnotherNode_GetsTheSameSuccessor(t *testing.T) {
	kek := make([]byte, keys.KEKSize)
	copy(kek, "a key-encryption key both nodes")
	db := latchtest.Store(t)
	clk := latchtest.NewClock(time.Now().Truncate(time.Second))
	node := func() *env {
		t.Helper()
		sealer, err := keys.NewSealer(kek)
		if err != nil {
			t.Fatal(err)
		}
		km, err := keys.NewManager(db, sealer, keys.Config{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := km.EnsureKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Issuer: testIssuer, Store: db, Keys: km, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return &env{t: t, srv: srv, h: srv.Handler(), db: db, keys: km, clock: clk, logs: &lockedBuffer{},
			clients: &registry.Clients{Store: db, Now: clk.Now}}
	}
	a, b := node(), node()

	c := a.webClient()
	code, _ := a.newCode(c, a.alice())
	_, t0 := a.redeem(c, code)
	status, t1 := a.refresh(c, t0.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh on node A: %d %+v", status, t1)
	}
	a.clock.Advance(time.Second)
	status, retry := b.refresh(c, t0.RefreshToken)
	if status != 200 || retry.RefreshToken != t1.RefreshToken {
		t.Fatalf("retry on node B: %d, refresh token %q; want 200 and node A's successor %q", status, retry.RefreshToken, t1.RefreshToken)
	}
	if status, _ := b.refresh(c, t1.RefreshToken); status != 200 {
		t.Fatalf("the one successor on node B: %d", status)
	}
}

func TestRefresh_BoundToClientLifetimesAndUser(t *testing.T) {
	t.Run("OtherClientRefusedFamilyKept", func(t *testing.T) {
		e := newEnv(t)
		c, other := e.webClient(), e.webClient()
		code, _ := e.newCode(c, e.alice())
		_, t0 := e.redeem(c, code)
		if status, tr := e.refresh(other, t0.RefreshToken); status != 400 || tr.Error != "invalid_grant" {
			t.Fatalf("other client: %d %+v", status, tr)
		}
		if status, _ := e.refresh(c, t0.RefreshToken); status != 200 {
			t.Fatalf("owner after a foreign attempt: %d", status)
		}
	})
	t.Run("IdleExpiry", func(t *testing.T) {
		e := newEnv(t, func(cfg *server.Config) { cfg.RefreshTokenTTL = time.Hour })
		c := e.webClient()
		code, _ := e.newCode(c, e.alice())
		_, t0 := e.redeem(c, code)
		e.clock.Advance(time.Hour)
		if status, _ := e.refresh(c, t0.RefreshToken); status != 400 {
			t.Fatalf("refresh after idle expiry: %d", status)
		}
	})
	t.Run("FamilyMaxAge", func(t *testing.T) {
		e := newEnv(t, func(cfg *server.Config) {
			cfg.RefreshTokenTTL = time.Hour
			cfg.RefreshFamilyMaxAge = 150 * time.Minute
		})
		c := e.webClient()
		code, _ := e.newCode(c, e.alice())
		_, tr := e.redeem(c, code)
		for i := range 2 {
			e.clock.Advance(59 * time.Minute)
			var status int
			if status, tr = e.refresh(c, tr.RefreshToken); status != 200 {
				t.Fatalf("refresh %d inside the family lifetime: %d %+v", i, status, tr)
			}
		}
		e.clock.Advance(59 * time.Minute) // 177 min > 150
		if status, _ := e.refresh(c, tr.RefreshToken); status != 400 {
			t.Fatalf("refresh past the family's absolute lifetime: %d", status)
		}
	})
	t.Run("DisabledUserAndLogoutEverywhere", func(t *testing.T) {
		e := newEnv(t)
		c := e.webClient()
		uid := e.alice()
		code, _ := e.newCode(c, uid)
		_, t0 := e.redeem(c, code)
		if _, err := newUsers(e).LogoutEverywhere(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		if e.active(c, t0.AccessToken) {
			t.Error("JWT access token active after logout everywhere")
		}
		if status, _ := e.refresh(c, t0.RefreshToken); status != 400 {
			t.Error("refresh after logout everywhere succeeded")
		}
		code, _ = e.newCode(c, uid)
		_, t1 := e.redeem(c, code)
		if _, err := newUsers(e).SetDisabled(context.Background(), "alice", true); err != nil {
			t.Fatal(err)
		}
		if status, _ := e.refresh(c, t1.RefreshToken); status != 400 {
			t.Error("refresh of a disabled user succeeded")
		}
	})
	t.Run("ScopeNarrowsNeverWidens", func(t *testing.T) {
		e := newEnv(t)
		c := e.webClient()
		code, _ := e.newCode(c, e.alice())
		_, t0 := e.redeem(c, code)
		status, narrow := e.grant(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t0.RefreshToken}, "scope": {"read"}})
		if status != 200 || narrow.Scope != "read" || narrow.IDToken != "" {
			t.Fatalf("narrowed refresh: %d %+v", status, narrow)
		}
		status, wide := e.grant(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {narrow.RefreshToken}, "scope": {"read write"}})
		if status != 400 || wide.Error != "invalid_scope" {
			t.Fatalf("widened refresh: %d %+v", status, wide)
		}
	})
}

func TestRevoke_RefreshTokenRevokesItsFamily(t *testing.T) {
	e := newEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.AccessTokenFormat = "opaque" })
	code, _ := e.newCode(c, e.alice())
	_, t0 := e.redeem(c, code)
	if !strings.HasPrefix(t0.AccessToken, token.PrefixAccess) {
		t.Fatalf("want an opaque access token, got %q", t0.AccessToken)
	}
	if w := e.do("/oauth2/revoke", c, url.Values{"token": {t0.RefreshToken}}); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if got := e.introspect(c, t0.AccessToken); got != `{"active":false}` {
		t.Errorf("access token after revoking its refresh token: %s", got)
	}
	if status, _ := e.refresh(c, t0.RefreshToken); status != 400 {
		t.Error("revoked refresh token still refreshes")
	}
}

func TestUserinfo(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	uid := e.alice()
	code, _ := e.newCode(c, uid)
	_, tr := e.redeem(c, code)
	w := e.get("/userinfo", http.Header{"Authorization": {"Bearer " + tr.AccessToken}})
	var got map[string]any
	mustJSON(t, w.Body.Bytes(), &got)
	if w.Code != 200 || got["sub"] != uid || got["preferred_username"] != "alice" {
		t.Fatalf("userinfo: %d %v", w.Code, got)
	}
	code, _ = e.newCode(c, uid, "read")
	_, noOIDC := e.redeem(c, code)
	w = e.get("/userinfo", http.Header{"Authorization": {"Bearer " + noOIDC.AccessToken}})
	if w.Code != 403 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("userinfo without openid: %d %s", w.Code, w.Header())
	}
	if w := e.get("/userinfo", nil); w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="latch"` {
		t.Errorf("userinfo without a token: %d %v", w.Code, w.Header())
	}
}

func TestDiscovery_AdvertisesTheCodeFlowAndOIDC(t *testing.T) {
	e := newEnv(t)
	w := e.get("/.well-known/openid-configuration", nil)
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"authorization_endpoint": testIssuer + "/oauth2/authorize", "userinfo_endpoint": testIssuer + "/userinfo",
		"end_session_endpoint": testIssuer + "/oauth2/logout",
	} {
		if md[k] != want {
			t.Errorf("%s = %v, want %s", k, md[k], want)
		}
	}
	for k, want := range map[string]string{"response_types_supported": "code", "code_challenge_methods_supported": "S256",
		"subject_types_supported": "public", "grant_types_supported": "refresh_token"} {
		l, _ := md[k].([]any)
		found := false
		for _, v := range l {
			found = found || v == want
		}
		if !found {
			t.Errorf("%s = %v, want it to hold %s", k, md[k], want)
		}
	}
	if md["authorization_response_iss_parameter_supported"] != true {
		t.Error("RFC 9207 iss parameter not advertised")
	}
}

func TestPasswordGrant_OptInFirstPartyOnly_ThrottledAndRevocable(t *testing.T) {
	e, _, alice := loginEnv(t)
	if _, err := e.clients.Create(t.Context(), registry.ClientSpec{GrantTypes: []string{"password"}, Scope: "read"}); err == nil {
		t.Fatal("a third-party client registered for the password grant")
	}
	off := e.webClient()
	pw := e.client(registry.ClientSpec{Name: "legacy", FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scope: "openid read", Audiences: []string{"api"}})
	form := func(user, pass string) url.Values {
		return url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}, "scope": {"openid read"}}
	}
	if status, tr := e.grant(off, form("alice", alicePassword)); status != 400 || tr.Error != "unauthorized_client" {
		t.Fatalf("client without the grant: %d %+v", status, tr)
	}
	status, tr := e.grant(pw, form("alice", alicePassword))
	if status != 200 || tr.RefreshToken == "" || payload(t, tr.AccessToken)["sub"] != alice.ID || tr.IDToken == "" {
		t.Fatalf("password grant: %d %+v", status, tr)
	}
	// Unknown user and wrong password: one answer.
	s1, unknown := e.grant(pw, form("mallory", "whatever whatever"))
	s2, wrong := e.grant(pw, form("alice", "wrong password!"))
	if s1 != 400 || unknown != wrong || unknown.Error != "invalid_grant" {
		t.Fatalf("unknown user %d %+v vs wrong password %d %+v", s1, unknown, s2, wrong)
	}
	// The login throttle applies: after the failures above and a few
	// more, even the right password is refused until the back-off ends.
	for range 5 {
		e.grant(pw, form("alice", "wrong password!"))
	}
	w := e.do("/oauth2/token", pw, form("alice", alicePassword))
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("right password during the back-off: %d %s", w.Code, w.Body)
	}
	// Its family is revoked like any other.
	if _, err := newUsers(e).LogoutEverywhere(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.refresh(pw, tr.RefreshToken); status != 400 {
		t.Fatal("password-grant refresh token survived logout everywhere")
	}
}

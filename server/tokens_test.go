package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/authority"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// tokens is what the CLI builds: Tokens over the plain store (no token
// cache, no client cache), on the env's clock.
func (e *env) tokens() *authority.Tokens {
	return &authority.Tokens{Store: e.db, Keys: e.keys, Issuer: testIssuer, Now: e.clock.Now}
}

func mustIssue(t testing.TB, m *authority.Tokens, req authority.IssueRequest) *authority.Issued {
	t.Helper()
	out, err := m.Issue(context.Background(), req)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", req, err)
	}
	return out
}

func mustInspect(t testing.TB, m *authority.Tokens, raw string) *authority.Inspection {
	t.Helper()
	in, err := m.Introspect(context.Background(), raw, authority.OperatorPolicy)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	return &in
}

// logLen is the number of entries in the revocation log.
func (e *env) logLen() int {
	e.t.Helper()
	return logLen(e.t, e)
}

func logLen(tb testing.TB, e *env) int {
	tb.Helper()
	rs, err := e.db.RevocationsSince(context.Background(), 0, 10000)
	if err != nil {
		tb.Fatal(err)
	}
	return len(rs)
}

func TestTokens_Issue_IsAClientCredentialsToken(t *testing.T) {
	e := newEnv(t)
	rs := e.resourceServer() // introspects
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) {
			c := e.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api", "other-api"}, AccessTokenFormat: format})
			out := mustIssue(t, e.tokens(), authority.IssueRequest{ClientID: c.ID, Scope: "read", Audiences: []string{"other-api"}})
			if string(out.Format) != format || out.TokenType != "Bearer" || out.ExpiresIn != 600 || out.Scope != "read" {
				t.Errorf("Issue = format %s, %+v; want %s, Bearer, 600 s, read", out.Format, out.TokenResponse, format)
			}
			if format == "opaque" && !strings.HasPrefix(out.AccessToken, token.PrefixAccess) {
				t.Errorf("opaque client got %.10s...", out.AccessToken)
			}
			var got struct {
				Active   bool     `json:"active"`
				ClientID string   `json:"client_id"`
				Sub      string   `json:"sub"`
				Scope    string   `json:"scope"`
				Aud      []string `json:"aud"`
				Iss      string   `json:"iss"`
				Exp      int64    `json:"exp"`
			}
			mustJSON(t, []byte(e.introspect(rs, out.AccessToken)), &got)
			want := e.clock.Now().Add(10 * time.Minute).Unix()
			if !got.Active || got.ClientID != c.ID || got.Sub != c.ID || got.Scope != "read" ||
				len(got.Aud) != 1 || got.Aud[0] != "other-api" || got.Iss != testIssuer || got.Exp != want {
				t.Errorf("the server introspects the issued token as %+v; want active, client and sub %s, scope read, aud [other-api], exp %d", got, c.ID, want)
			}
		})
	}
}

// TestTokens_Issue_RefusesWhatTheTokenEndpointRefuses: the same request
// refused by the endpoint with an OAuth error is refused by Issue, with
// the same description and code in its message.
func TestTokens_Issue_RefusesWhatTheTokenEndpointRefuses(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	web := e.webClient()
	bare := e.client(registry.ClientSpec{Scope: "read"})
	for _, tc := range []struct {
		name   string
		client creds
		form   url.Values
		want   string
	}{
		{"scope not registered", c, url.Values{"scope": {"read latch:admin"}}, "invalid_scope"},
		{"audience not registered", c, url.Values{"audience": {"elsewhere"}}, "invalid_target"},
		{"malformed scope", c, url.Values{"scope": {"read \"x\""}}, "invalid_scope"},
		{"no client_credentials grant", web, nil, "unauthorized_client"},
		{"no audience registered", bare, nil, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}}
			for k, v := range tc.form {
				form[k] = v
			}
			status, tr := e.grant(tc.client, form)
			if status != 400 || tr.Error != tc.want {
				t.Fatalf("endpoint: %d %s, want 400 %s", status, tr.Error, tc.want)
			}
			_, err := e.tokens().Issue(context.Background(), authority.IssueRequest{ClientID: tc.client.ID,
				Scope: tc.form.Get("scope"), Audiences: tc.form["audience"]})
			if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), tr.Description) || !strings.Contains(err.Error(), tc.client.ID) {
				t.Errorf("Issue: %v; want EINVALID naming the client, with %q and %q", err, tr.Description, tc.want)
			}
		})
	}
	before := e.logLen()
	if _, err := e.tokens().Issue(context.Background(), authority.IssueRequest{ClientID: "nope"}); latch.ErrorCode(err) != latch.ENOTFOUND || !strings.Contains(err.Error(), "latch client list") {
		t.Errorf("unknown client: %v, want ENOTFOUND pointing to latch client list", err)
	}
	noIssuer := e.tokens()
	noIssuer.Issuer = ""
	if _, err := noIssuer.Issue(context.Background(), authority.IssueRequest{ClientID: c.ID}); err == nil || !strings.Contains(err.Error(), "issuer is required") {
		t.Errorf("without an issuer: %v, want the issuer required", err)
	}
	badIssuer := e.tokens()
	badIssuer.Issuer = "auth.example.com"
	if _, err := badIssuer.Issue(context.Background(), authority.IssueRequest{ClientID: c.ID}); err == nil || !strings.Contains(err.Error(), "absolute URL") {
		t.Errorf("relative issuer: %v, want it refused", err)
	}
	if after := e.logLen(); after != before {
		t.Errorf("refused issuances wrote %d revocation entries", after-before)
	}
}

func TestTokens_Issue_TTLShortensNeverExtends(t *testing.T) {
	e := newEnv(t)
	c := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, AccessTokenTTL: 300, AccessTokenFormat: "opaque"})
	out := mustIssue(t, e.tokens(), authority.IssueRequest{ClientID: c.ID, TTL: time.Minute})
	if out.ExpiresIn != 60 {
		t.Errorf("TTL 1m: expires_in %d, want 60", out.ExpiresIn)
	}
	if in := mustInspect(t, e.tokens(), out.AccessToken); in.Exp != e.clock.Now().Add(time.Minute).Unix() {
		t.Errorf("TTL 1m: exp %d, want now+60", in.Exp)
	}
	for _, ttl := range []time.Duration{6 * time.Minute, 500 * time.Millisecond, -time.Second} {
		if _, err := e.tokens().Issue(context.Background(), authority.IssueRequest{ClientID: c.ID, TTL: ttl}); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("TTL %v for a 5m client: %v, want EINVALID", ttl, err)
		}
	}
	// The server-wide cap applies to the client's own lifetime.
	capped := e.tokens()
	capped.MaxAccessTokenTTL = 2 * time.Minute
	if out := mustIssue(t, capped, authority.IssueRequest{ClientID: c.ID}); out.ExpiresIn != 120 {
		t.Errorf("capped at 2m: expires_in %d, want 120", out.ExpiresIn)
	}
}

func TestTokens_Issue_FingerprintAndEncryptionAsRegistered(t *testing.T) {
	e := newEnv(t)
	bound := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, TokenFingerprint: true})
	out := mustIssue(t, e.tokens(), authority.IssueRequest{ClientID: bound.ID})
	name, value, ok := strings.Cut(out.FingerprintCookie, "=")
	if !ok || name != authority.FingerprintCookie || value == "" || strings.Contains(value, ";") {
		t.Fatalf("FingerprintCookie = %q, want %s=VALUE", out.FingerprintCookie, authority.FingerprintCookie)
	}
	sum := sha256.Sum256([]byte(value))
	if fgp := payload(t, out.AccessToken)[authority.ClaimFingerprint]; fgp != hex.EncodeToString(sum[:]) {
		t.Errorf("fgp claim %v is not the SHA-256 of the cookie value", fgp)
	}
	plain := mustIssue(t, e.tokens(), authority.IssueRequest{ClientID: e.jwtClient().ID})
	if plain.FingerprintCookie != "" || plain.Encrypted {
		t.Errorf("an unbound, unencrypted client got %+v", plain)
	}

	k := newRSEncKey(t, "rs-1", elliptic.P256())
	enc := e.encryptedClient(k)
	out = mustIssue(t, e.tokens(), authority.IssueRequest{ClientID: enc.ID})
	if !out.Encrypted || strings.Count(out.AccessToken, ".") != 4 {
		t.Fatalf("encrypted client: Encrypted %v, %d dots; want a JWE", out.Encrypted, strings.Count(out.AccessToken, "."))
	}
	if _, inner := k.open(t, out.AccessToken); payload(t, inner)["client_id"] != enc.ID {
		t.Errorf("the decrypted token is not the client's: %v", payload(t, inner))
	}
}

// TestTokens_Inspect_SaysWhyInactive: every reason, and the claims where
// they are known; the endpoint answers exactly {"active":false} for each.
func TestTokens_Inspect_SaysWhyInactive(t *testing.T) {
	e := newEnv(t)
	m := e.tokens()
	jc, oc, rs := e.jwtClient(), e.opaqueClient(), e.resourceServer()
	web := e.webClient(func(s *registry.ClientSpec) { s.AccessTokenFormat = "opaque" })
	code, _ := e.newCode(web, e.alice())
	_, grant := e.redeem(web, code)

	liveJWT := e.token(jc, url.Values{"scope": {"read"}})
	liveOpaque := e.token(oc, nil)
	revokedJWT, revokedOpaque := e.token(jc, nil), e.token(oc, nil)
	for _, tok := range []string{revokedJWT, revokedOpaque} {
		client := jc
		if strings.HasPrefix(tok, "lt_") {
			client = oc
		}
		if w := e.do("/oauth2/revoke", client, url.Values{"token": {tok}}); w.Code != 200 {
			t.Fatalf("revoke: %d %s", w.Code, w.Body)
		}
	}
	gone := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
	deletedClients := e.token(gone, nil)
	if err := e.db.DeleteClient(context.Background(), gone.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second) // past the server's client cache
	kid, alg, key, _ := e.keys.Signing()
	signer, _ := token.NewSigner(kid, alg, key)
	now := e.clock.Now()
	claims := func(iss string) *token.Claims {
		return &token.Claims{Issuer: iss, Subject: jc.ID, Audience: token.Audience{"api"}, ExpiresAt: now.Add(time.Minute).Unix(),
			IssuedAt: now.Unix(), ID: "jti-x", ClientID: jc.ID}
	}
	idToken, _ := signer.Sign(server.TypeIDToken, claims(testIssuer))
	otherIssuer, _ := signer.Sign(server.TypeAccessToken, claims("https://elsewhere.test"))
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := forge(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "not-ours"},
		map[string]any{"iss": testIssuer, "sub": "x", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "j"}, es256(attacker))
	forged := forge(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid},
		map[string]any{"iss": testIssuer, "sub": "x", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "j"}, es256(attacker))
	algNone := forge(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, map[string]any{"iss": testIssuer}, func([]byte) []byte { return nil })
	unknownOpaque, _ := token.NewOpaque(latch.KindAccess, nil)
	jwe := mustIssue(t, m, authority.IssueRequest{ClientID: e.encryptedClient(newRSEncKey(t, "k", elliptic.P256())).ID}).AccessToken
	expiring, expiringOpaque := e.token(jc, nil), e.token(oc, nil)

	check := func(name, raw string, active bool, reason authority.InactiveReason, clientID string) {
		t.Helper()
		in := mustInspect(t, m, raw)
		if in.Active != active || in.Reason != reason || in.ClientID != clientID {
			t.Errorf("%s: active %v, reason %q, client %q; want %v, %q, %q (detail: %s)", name, in.Active, in.Reason, in.ClientID, active, reason, clientID, in.Detail)
		}
		if !active && in.Detail == "" {
			t.Errorf("%s: inactive without a detail", name)
		}
		if strings.Contains(in.Detail, raw) || strings.Contains(in.Detail, raw[:min(len(raw), 20)]) && len(raw) > 30 {
			t.Errorf("%s: the detail repeats the token: %s", name, in.Detail)
		}
		if b, _ := json.Marshal(in.Answer()); !active && string(b) != inactive {
			t.Errorf("%s: Answer() = %s, want %s", name, b, inactive)
		}
		if got := e.introspect(rs, raw); active != strings.HasPrefix(got, `{"active":true`) || !active && got != inactive {
			t.Errorf("%s: the endpoint answers %s", name, got)
		}
	}
	check("live JWT", liveJWT, true, "", jc.ID)
	check("live opaque", liveOpaque, true, "", oc.ID)
	check("revoked JWT", revokedJWT, false, authority.ReasonRevoked, jc.ID)
	check("revoked opaque", revokedOpaque, false, authority.ReasonRevoked, "")
	check("deleted client's JWT", deletedClients, false, authority.ReasonClientDeleted, gone.ID)
	check("ID token", idToken, false, authority.ReasonWrongType, "")
	check("other issuer", otherIssuer, false, authority.ReasonNotOurs, "")
	check("foreign key", foreign, false, authority.ReasonNotOurs, "")
	check("forged signature", forged, false, authority.ReasonBadSignature, "")
	check("alg none", algNone, false, authority.ReasonRefused, "")
	check("unknown opaque", unknownOpaque, false, authority.ReasonUnknown, "")
	check("bad checksum", flip(liveOpaque, 10), false, authority.ReasonMalformed, "")
	check("garbage", "hello world", false, authority.ReasonMalformed, "")
	check("JWE", jwe, false, authority.ReasonEncrypted, "")

	// A refresh token is active to the operator, as to its own client, and
	// to no other introspecting client.
	in := mustInspect(t, m, grant.RefreshToken)
	if !in.Active || in.TokenType != "refresh_token" || in.FamilyID == "" || in.Sub == "" {
		t.Errorf("refresh token to the operator: %+v", in)
	}
	if got := e.introspect(jc, grant.RefreshToken); got != inactive {
		t.Errorf("refresh token to another client: %s", got)
	}
	if in := mustInspect(t, m, grant.AccessToken); in.FamilyID != mustInspect(t, m, grant.RefreshToken).FamilyID {
		t.Errorf("the access token of a grant has family %q", in.FamilyID)
	}

	// Expired: the claims are still shown to the operator.
	e.clock.Advance(11 * time.Minute)
	for _, tok := range []string{expiring, expiringOpaque} {
		in := mustInspect(t, m, tok)
		if in.Active || in.Reason != authority.ReasonExpired || in.ClientID == "" || in.Exp == 0 || !strings.Contains(in.Detail, "expired at") {
			t.Errorf("expired %s token: %+v", in.Format, in)
		}
	}
}

// TestTokens_Revoke_AsTheRevocationEndpoint revokes each kind of token on
// the plain store, as the CLI does, and checks what the server then says.
func TestTokens_Revoke_AsTheRevocationEndpoint(t *testing.T) {
	e := newEnv(t)
	m := e.tokens()
	ctx := context.Background()
	jc, oc := e.jwtClient(), e.opaqueClient()

	t.Run("opaque access token", func(t *testing.T) {
		tok := e.token(oc, nil)
		r, err := m.Revoke(ctx, tok)
		if err != nil || r.AlreadyRevoked || r.FamilyRevoked || r.Token.Active || r.Token.Reason != authority.ReasonRevoked || r.Token.ClientID != oc.ID {
			t.Fatalf("Revoke = %+v, %v", r, err)
		}
		if got := e.introspect(jc, tok); got != inactive {
			t.Errorf("after Revoke: %s", got)
		}
		if r, err := m.Revoke(ctx, tok); err != nil || !r.AlreadyRevoked {
			t.Errorf("again: %+v, %v; want AlreadyRevoked", r, err)
		}
	})
	t.Run("JWT", func(t *testing.T) {
		tok := e.token(jc, nil)
		before := e.logLen()
		r, err := m.Revoke(ctx, tok)
		if err != nil || r.AlreadyRevoked || r.DenylistedUntil == nil {
			t.Fatalf("Revoke = %+v, %v", r, err)
		}
		if want := time.Unix(payloadExp(t, tok), 0).Add(30 * time.Second); !r.DenylistedUntil.Equal(want) {
			t.Errorf("denylisted until %v, want exp + leeway %v", r.DenylistedUntil, want)
		}
		if got := e.introspect(jc, tok); got != inactive {
			t.Errorf("after Revoke: %s", got)
		}
		if r, err := m.Revoke(ctx, tok); err != nil || !r.AlreadyRevoked {
			t.Errorf("again: %+v, %v; want AlreadyRevoked", r, err)
		}
		if got := e.logLen() - before; got != 1 {
			t.Errorf("revoking a JWT twice appended %d log entries, want 1", got)
		}
	})
	t.Run("refresh token revokes its family", func(t *testing.T) {
		for _, format := range []string{"jwt", "opaque"} {
			web := e.webClient(func(s *registry.ClientSpec) { s.AccessTokenFormat = format })
			code, _ := e.newCode(web, e.alice2())
			_, g := e.redeem(web, code)
			r, err := m.Revoke(ctx, g.RefreshToken)
			if err != nil || !r.FamilyRevoked || r.AlreadyRevoked {
				t.Fatalf("%s: Revoke = %+v, %v", format, r, err)
			}
			if got := e.introspect(jc, g.AccessToken); got != inactive {
				t.Errorf("%s: the family's access token after revoking its refresh token: %s", format, got)
			}
			if status, _ := e.refresh(web, g.RefreshToken); status != 400 {
				t.Errorf("%s: the revoked refresh token still refreshes", format)
			}
			if r, err := m.Revoke(ctx, g.RefreshToken); err != nil || !r.AlreadyRevoked {
				t.Errorf("%s: again: %+v, %v; want AlreadyRevoked", format, r, err)
			}
		}
	})
	t.Run("a deleted client's JWT is denylisted all the same", func(t *testing.T) {
		gone := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
		tok := e.token(gone, nil)
		if err := e.db.DeleteClient(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		_, p, _ := segments(t, tok)
		if r, err := m.Revoke(ctx, tok); err != nil || r.AlreadyRevoked {
			t.Fatalf("Revoke = %+v, %v", r, err)
		}
		if ok, _ := e.db.IsRevoked(ctx, testIssuer, p["jti"].(string)); !ok {
			t.Error("not denylisted")
		}
	})
	t.Run("refusals write nothing", func(t *testing.T) {
		attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		foreign := forge(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "other"},
			map[string]any{"iss": testIssuer, "exp": e.clock.Now().Add(time.Minute).Unix(), "iat": e.clock.Now().Unix(), "jti": "j"}, es256(attacker))
		unknown, _ := token.NewOpaque(latch.KindAccess, nil)
		jwe := mustIssue(t, m, authority.IssueRequest{ClientID: e.encryptedClient(newRSEncKey(t, "k", elliptic.P256())).ID}).AccessToken
		expiring, expiringOpaque := e.token(jc, nil), e.token(oc, nil)
		e.clock.Advance(11 * time.Minute)
		before := e.logLen()
		for name, raw := range map[string]string{
			"garbage": "not a token", "empty": "", "foreign JWT": foreign, "unknown opaque": unknown,
			"encrypted": jwe, "expired JWT": expiring, "expired opaque": expiringOpaque,
		} {
			r, err := m.Revoke(ctx, raw)
			if latch.ErrorCode(err) != latch.EINVALID || r != nil {
				t.Errorf("%s: Revoke = %+v, %v; want an EINVALID error", name, r, err)
			}
		}
		if after := e.logLen(); after != before {
			t.Errorf("refused revocations appended %d log entries", after-before)
		}
		if _, err := e.db.Token(ctx, token.Hash(expiringOpaque)); err != nil {
			t.Errorf("the refused revocation of an expired opaque token deleted it: %v", err)
		}
	})
}

// flip returns s with the character at i changed.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == c {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// alice2 creates a user with a unique name, for tests that need several.
func (e *env) alice2() string {
	e.t.Helper()
	name, _ := token.NewID(nil)
	v := mustCreateUser(e.t, newUsers(e), registry.UserSpec{Username: "u" + strings.ToLower(name[:8]), Password: "correct horse battery"})
	return v.ID
}

func payloadExp(t testing.TB, jws string) int64 {
	t.Helper()
	exp, ok := payload(t, jws)["exp"].(float64)
	if !ok {
		t.Fatalf("no exp in %v", payload(t, jws))
	}
	return int64(exp)
}

// TestTokens_Revoke_ReachesARunningServersTokenCache: a revocation made by
// another process on the plain store (the CLI) takes effect at a server
// that has the token in its cache, through the revocation log.
func TestTokens_Revoke_ReachesARunningServersTokenCache(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.Now = nil }) // the feed's freshness needs real time
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.srv.Run(ctx)
	oc, rs := e.opaqueClient(), e.resourceServer()
	tok := e.cachedOpaque(oc, rs)
	other := &authority.Tokens{Store: e.db, Keys: e.keys}
	if r, err := other.Revoke(ctx, tok); err != nil || r.AlreadyRevoked {
		t.Fatalf("Revoke = %+v, %v", r, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for e.introspect(rs, tok) != inactive {
		if time.Now().After(deadline) {
			t.Fatal("the server still answers active 2 s after the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTokens_Inspect_StoreErrorsAreErrors(t *testing.T) {
	db := latchtest.Store(t)
	km := latchtest.Keys(t, db, nil)
	m := &authority.Tokens{Store: db, Keys: km}
	tok, _ := token.NewOpaque(latch.KindAccess, nil)
	db.Close()
	if _, err := m.Introspect(context.Background(), tok, authority.OperatorPolicy); err == nil || errors.Is(err, latch.ErrNotFound) {
		t.Errorf("Inspect on a closed store: %v, want an error that is not 'not found'", err)
	}
}

// FuzzTokens_InspectAndRevoke feeds arbitrary strings to Inspect and
// Revoke, the operator's entry points for tokens pasted from logs: never a
// panic or a store error, an inactive answer for anything not issued here
// that is exactly {"active":false} at the endpoint, and a refused
// revocation that writes nothing.
func FuzzTokens_InspectAndRevoke(f *testing.F) {
	e := newEnv(f)
	m := e.tokens()
	jc, oc := e.jwtClient(), e.opaqueClient()
	live := map[string]bool{e.token(jc, nil): true, e.token(oc, nil): true}
	for tok := range live {
		f.Add(tok)
		f.Add(flip(tok, len(tok)-5))
	}
	f.Add("")
	f.Add("Bearer lt_at_")
	f.Add("e30.e30.e30.e30.e30")
	ctx := context.Background()
	before := e.logLen()
	f.Fuzz(func(t *testing.T, raw string) {
		in, err := m.Introspect(ctx, raw, authority.OperatorPolicy)
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		if live[raw] {
			if !in.Active {
				t.Fatalf("a live token inspected inactive: %s", in.Detail)
			}
			return
		}
		if in.Active || in.Reason == "" {
			t.Fatalf("a string never issued here inspected as %+v", in)
		}
		if b, _ := json.Marshal(in.Answer()); string(b) != inactive {
			t.Fatalf("Answer() = %s", b)
		}
		if r, err := m.Revoke(ctx, raw); err == nil || r != nil {
			t.Fatalf("Revoke of a string never issued here = %+v, %v", r, err)
		}
		if n := logLen(t, e); n != before {
			t.Fatalf("a refused revocation wrote %d log entries", n-before)
		}
	})
}

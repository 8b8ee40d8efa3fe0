// Package storetest is the conformance suite every latch.Store backend must
// pass: Run checks each method against the contract documented in package
// latch (store.go), so the SQLite, PostgreSQL and Redis backends answer the
// same calls the same way.
//
// It owns the contract's executable form, not any backend: a backend's own
// tests (migrations, connection settings, benchmarks) live beside it. Where
// the contract leaves a choice open (how Revoke treats a missing key field,
// what limit <= 0 means), the suite does not test it.
//
// Time values round-trip to within a millisecond (PostgreSQL keeps
// microseconds, so exact nanoseconds are not required) and may come back in
// another location; zero times come back zero. Nil and empty slices are
// equal.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// Run runs the conformance suite. newStore must return a fresh, empty,
// migrated store and register its cleanup (t.Cleanup); it is called once
// per subtest. Subtests do not run in parallel, so newStore may reuse one
// database it empties each time.
func Run(t *testing.T, newStore func(t *testing.T) latch.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Client", clientTests},
		{"Token", tokenTests},
		{"Revocation", revocationTests},
		{"Key", keyTests},
		{"User", userTests},
		{"Session", sessionTests},
		{"Grant", grantTests},
		{"PushedRequest", pushedRequestTests},
		{"Consent", consentTests},
		{"PurgeExpired", purgeTests},
		{"Concurrency", concurrencyTests},
		{"Context", contextTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, newStore(t))
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s latch.Store)
}

// base is the suite's clock: fixed, in a non-UTC zone, with nanoseconds a
// backend may drop (within the tolerance).
var base = time.Date(2031, time.March, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60))

// timeTolerance is how far a stored time may drift: PostgreSQL keeps
// microseconds; a backend that keeps milliseconds still passes.
const timeTolerance = time.Millisecond

func ctx(t testing.TB) context.Context { return t.Context() }

// sum is a stand-in token hash.
func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newClient(id string) *latch.Client {
	return &latch.Client{
		ID:             id,
		Name:           "Client " + id,
		RegistrationID: "reg-" + id,
		SecretHash:     sum("secret of " + id),
		AuthMethod:     latch.AuthSecretBasic,
		JWKS:           []byte(`{"keys":[{"kty":"EC","crv":"P-256"}]}`),
		GrantTypes:     []string{latch.GrantClientCredentials, latch.GrantRefreshToken, latch.GrantTokenExchange},
		Scopes:         []string{"read", "write", "ünïcødé", `quote"and\backslash`},
		Audiences:      []string{"https://api.example.com", "urn:example:other"},
		RedirectURIs: []string{
			"https://app.example.com/callback?a=1&b=2",
			"http://127.0.0.1:8080/cb",
		},
		AccessTokenFormat:        latch.FormatOpaque,
		AccessTokenTTL:           10*time.Minute + 1500*time.Millisecond + 7,
		RefreshTokenTTL:          30 * 24 * time.Hour,
		TokenFingerprint:         true,
		FirstParty:               true,
		AccessTokenEncryptionKey: []byte(`{"kty":"EC","crv":"P-256","x":"AQ","y":"Ag","use":"enc"}`),
		DPoP:                     latch.DPoPRequired,
		RequirePAR:               true,
		IDTokenAlgorithm:         latch.PS256,
		WebOrigins:               []string{"https://spa.example.com", "http://127.0.0.1:5173"},
		CreatedAt:                base,
		UpdatedAt:                base.Add(90 * time.Second),
	}
}

func newToken(clientID, name string) *latch.Token {
	return &latch.Token{
		Hash:      sum(name),
		Kind:      latch.KindAccess,
		ID:        "tok-" + name,
		ClientID:  clientID,
		Subject:   "user-" + name,
		Scope:     []string{"read", "write"},
		Audience:  []string{"https://api.example.com"},
		FamilyID:  "fam-" + clientID,
		JKT:       "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		IssuedAt:  base,
		ExpiresAt: base.Add(10 * time.Minute),
	}
}

func jwtRevocation(issuer, jti string) *latch.Revocation {
	return &latch.Revocation{
		Kind:      latch.RevokeJWT,
		Issuer:    issuer,
		JTI:       jti,
		ExpiresAt: base.Add(10 * time.Minute),
		RevokedAt: base.Add(time.Minute),
	}
}

func opaqueRevocation(hash []byte) *latch.Revocation {
	return &latch.Revocation{
		Kind:      latch.RevokeOpaque,
		TokenHash: hash,
		ExpiresAt: base.Add(10 * time.Minute),
		RevokedAt: base.Add(time.Minute),
	}
}

func newKey(id string, createdAt time.Time) *latch.Key {
	return &latch.Key{
		ID:        id,
		Algorithm: latch.ES256,
		Public:    []byte("public DER of " + id),
		Private:   []byte("sealed private DER of " + id + "\x00\xff"),
		CreatedAt: createdAt,
		ActiveAt:  createdAt.Add(time.Hour),
	}
}

func mustCreateClient(tb testing.TB, s latch.Store, c *latch.Client) {
	tb.Helper()
	if err := s.CreateClient(ctx(tb), c); err != nil {
		tb.Fatalf("CreateClient(%q): %v", c.ID, err)
	}
}

func mustClient(tb testing.TB, s latch.Store, id string) *latch.Client {
	tb.Helper()
	c, err := s.Client(ctx(tb), id)
	if err != nil {
		tb.Fatalf("Client(%q): %v", id, err)
	}
	return c
}

func mustCreateToken(tb testing.TB, s latch.Store, tok *latch.Token) {
	tb.Helper()
	if err := s.CreateToken(ctx(tb), tok); err != nil {
		tb.Fatalf("CreateToken(%s): %v", tok.ID, err)
	}
}

func mustToken(tb testing.TB, s latch.Store, hash []byte) *latch.Token {
	tb.Helper()
	tok, err := s.Token(ctx(tb), hash)
	if err != nil {
		tb.Fatalf("Token(%x): %v", hash[:4], err)
	}
	return tok
}

func mustRevoke(tb testing.TB, s latch.Store, r *latch.Revocation) int64 {
	tb.Helper()
	if err := s.Revoke(ctx(tb), r); err != nil {
		tb.Fatalf("Revoke(%s %s %s %x): %v", r.Kind, r.Issuer, r.JTI, r.TokenHash, err)
	}
	if r.Seq <= 0 {
		tb.Fatalf("Revoke(%s %s %s %x): Seq = %d, want > 0", r.Kind, r.Issuer, r.JTI, r.TokenHash, r.Seq)
	}
	return r.Seq
}

func mustIsRevoked(tb testing.TB, s latch.Store, issuer, jti string) bool {
	tb.Helper()
	ok, err := s.IsRevoked(ctx(tb), issuer, jti)
	if err != nil {
		tb.Fatalf("IsRevoked(%q, %q): %v", issuer, jti, err)
	}
	return ok
}

func mustRevocationsSince(tb testing.TB, s latch.Store, after int64, limit int) []*latch.Revocation {
	tb.Helper()
	rs, err := s.RevocationsSince(ctx(tb), after, limit)
	if err != nil {
		tb.Fatalf("RevocationsSince(%d, %d): %v", after, limit, err)
	}
	return rs
}

func mustCreateKey(tb testing.TB, s latch.Store, k *latch.Key) {
	tb.Helper()
	if err := s.CreateKey(ctx(tb), k); err != nil {
		tb.Fatalf("CreateKey(%q): %v", k.ID, err)
	}
}

func mustKeys(tb testing.TB, s latch.Store) []*latch.Key {
	tb.Helper()
	ks, err := s.Keys(ctx(tb))
	if err != nil {
		tb.Fatalf("Keys: %v", err)
	}
	return ks
}

func mustPurgeExpired(tb testing.TB, s latch.Store, now time.Time) int64 {
	tb.Helper()
	n, err := s.PurgeExpired(ctx(tb), now)
	if err != nil {
		tb.Fatalf("PurgeExpired(%v): %v", now, err)
	}
	return n
}

// wantCode fails unless err carries the latch error code that sentinel has.
func wantCode(tb testing.TB, op string, err error, sentinel *latch.Error) {
	tb.Helper()
	if !errors.Is(err, sentinel) {
		tb.Fatalf("%s: err = %v (code %q), want code %q", op, err, latch.ErrorCode(err), sentinel.Code)
	}
}

// diff collects field mismatches so one failure names them all.
type diff []string

func (d *diff) str(field, want, got string) {
	if want != got {
		*d = append(*d, fmt.Sprintf("%s = %q, want %q", field, got, want))
	}
}

func (d *diff) int(field string, want, got int64) {
	if want != got {
		*d = append(*d, fmt.Sprintf("%s = %d, want %d", field, got, want))
	}
}

func (d *diff) bytes(field string, want, got []byte) {
	if !bytes.Equal(want, got) {
		*d = append(*d, fmt.Sprintf("%s = %x, want %x", field, got, want))
	}
}

func (d *diff) list(field string, want, got []string) {
	if !slices.Equal(want, got) {
		*d = append(*d, fmt.Sprintf("%s = %q, want %q", field, got, want))
	}
}

func (d *diff) time(field string, want, got time.Time) {
	if want.IsZero() != got.IsZero() || want.Sub(got).Abs() > timeTolerance {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

func (d diff) check(tb testing.TB, what string) {
	tb.Helper()
	if len(d) > 0 {
		tb.Errorf("%s differs:", what)
		for _, s := range d {
			tb.Errorf("  %s", s)
		}
	}
}

func checkClient(tb testing.TB, want, got *latch.Client) {
	tb.Helper()
	var d diff
	d.str("ID", want.ID, got.ID)
	d.str("Name", want.Name, got.Name)
	d.str("RegistrationID", want.RegistrationID, got.RegistrationID)
	d.bytes("SecretHash", want.SecretHash, got.SecretHash)
	d.str("AuthMethod", string(want.AuthMethod), string(got.AuthMethod))
	d.bytes("JWKS", want.JWKS, got.JWKS)
	d.list("GrantTypes", want.GrantTypes, got.GrantTypes)
	d.list("Scopes", want.Scopes, got.Scopes)
	d.list("Audiences", want.Audiences, got.Audiences)
	d.list("RedirectURIs", want.RedirectURIs, got.RedirectURIs)
	d.str("AccessTokenFormat", string(want.AccessTokenFormat), string(got.AccessTokenFormat))
	d.int("AccessTokenTTL", int64(want.AccessTokenTTL), int64(got.AccessTokenTTL))
	d.int("RefreshTokenTTL", int64(want.RefreshTokenTTL), int64(got.RefreshTokenTTL))
	d.str("TokenFingerprint", fmt.Sprint(want.TokenFingerprint), fmt.Sprint(got.TokenFingerprint))
	d.str("FirstParty", fmt.Sprint(want.FirstParty), fmt.Sprint(got.FirstParty))
	d.bytes("AccessTokenEncryptionKey", want.AccessTokenEncryptionKey, got.AccessTokenEncryptionKey)
	d.str("DPoP", string(want.DPoP), string(got.DPoP))
	d.str("RequirePAR", fmt.Sprint(want.RequirePAR), fmt.Sprint(got.RequirePAR))
	d.str("IDTokenAlgorithm", string(want.IDTokenAlgorithm), string(got.IDTokenAlgorithm))
	d.list("WebOrigins", want.WebOrigins, got.WebOrigins)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	d.check(tb, "client "+want.ID)
}

func checkToken(tb testing.TB, want, got *latch.Token) {
	tb.Helper()
	var d diff
	d.bytes("Hash", want.Hash, got.Hash)
	d.str("Kind", string(want.Kind), string(got.Kind))
	d.str("ID", want.ID, got.ID)
	d.str("ClientID", want.ClientID, got.ClientID)
	d.str("RegistrationID", want.RegistrationID, got.RegistrationID)
	d.str("Subject", want.Subject, got.Subject)
	d.list("Scope", want.Scope, got.Scope)
	d.list("Audience", want.Audience, got.Audience)
	d.str("FamilyID", want.FamilyID, got.FamilyID)
	d.str("JKT", want.JKT, got.JKT)
	d.time("IssuedAt", want.IssuedAt, got.IssuedAt)
	d.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	d.time("RotatedAt", want.RotatedAt, got.RotatedAt)
	d.check(tb, "token "+want.ID)
}

func checkRevocation(tb testing.TB, want, got *latch.Revocation) {
	tb.Helper()
	var d diff
	d.int("Seq", want.Seq, got.Seq)
	d.str("Kind", string(want.Kind), string(got.Kind))
	d.str("Issuer", want.Issuer, got.Issuer)
	d.str("JTI", want.JTI, got.JTI)
	d.bytes("TokenHash", want.TokenHash, got.TokenHash)
	d.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	d.time("RevokedAt", want.RevokedAt, got.RevokedAt)
	d.check(tb, fmt.Sprintf("revocation %d", want.Seq))
}

func checkKey(tb testing.TB, want, got *latch.Key) {
	tb.Helper()
	var d diff
	d.str("ID", want.ID, got.ID)
	d.str("Algorithm", string(want.Algorithm), string(got.Algorithm))
	d.bytes("Public", want.Public, got.Public)
	d.bytes("Private", want.Private, got.Private)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("ActiveAt", want.ActiveAt, got.ActiveAt)
	d.time("RetiredAt", want.RetiredAt, got.RetiredAt)
	d.time("RemovedAt", want.RemovedAt, got.RemovedAt)
	d.str("Purpose", string(want.Purpose), string(got.Purpose))
	d.check(tb, "key "+want.ID)
}

func newUser(id, username string) *latch.User {
	return &latch.User{
		ID:                id,
		Username:          username,
		PasswordHash:      "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$" + id,
		Roles:             []string{"admin", "ünïcødé", `quote"and\backslash`},
		Groups:            []string{"staff", "cn=ops,ou=groups"},
		CreatedAt:         base,
		UpdatedAt:         base.Add(time.Minute),
		PasswordChangedAt: base.Add(2 * time.Minute),
	}
}

// newSession returns a session of userID, live at base, idle for 30
// minutes, at most 12 hours long.
func newSession(userID, name string) *latch.Session {
	return &latch.Session{
		IDHash:        sum("session " + name),
		UserID:        userID,
		AuthTime:      base.Add(-time.Hour),
		CreatedAt:     base.Add(-time.Hour + time.Second),
		LastSeenAt:    base.Add(-time.Minute),
		IdleExpiresAt: base.Add(29 * time.Minute),
		ExpiresAt:     base.Add(11 * time.Hour),
		UserAgent:     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 ünïcødé",
		Address:       "2001:db8::1",
	}
}

func mustCreateUser(tb testing.TB, s latch.Store, u *latch.User) {
	tb.Helper()
	if err := s.CreateUser(ctx(tb), u); err != nil {
		tb.Fatalf("CreateUser(%q, %q): %v", u.ID, u.Username, err)
	}
}

func mustUser(tb testing.TB, s latch.Store, id string) *latch.User {
	tb.Helper()
	u, err := s.User(ctx(tb), id)
	if err != nil {
		tb.Fatalf("User(%q): %v", id, err)
	}
	return u
}

func mustUserByName(tb testing.TB, s latch.Store, name string) *latch.User {
	tb.Helper()
	u, err := s.UserByName(ctx(tb), name)
	if err != nil {
		tb.Fatalf("UserByName(%q): %v", name, err)
	}
	return u
}

func mustUsers(tb testing.TB, s latch.Store) []*latch.User {
	tb.Helper()
	us, err := s.Users(ctx(tb))
	if err != nil {
		tb.Fatalf("Users: %v", err)
	}
	return us
}

func mustCreateSession(tb testing.TB, s latch.Store, sess *latch.Session) {
	tb.Helper()
	if err := s.CreateSession(ctx(tb), sess); err != nil {
		tb.Fatalf("CreateSession(%x): %v", sess.IDHash[:4], err)
	}
}

func mustSession(tb testing.TB, s latch.Store, idHash []byte) *latch.Session {
	tb.Helper()
	sess, err := s.Session(ctx(tb), idHash)
	if err != nil {
		tb.Fatalf("Session(%x): %v", idHash[:4], err)
	}
	return sess
}

// wantNoSession fails unless the session idHash is gone.
func wantNoSession(tb testing.TB, s latch.Store, op string, idHash []byte) {
	tb.Helper()
	_, err := s.Session(ctx(tb), idHash)
	wantCode(tb, fmt.Sprintf("Session(%x) %s", idHash[:4], op), err, latch.ErrNotFound)
}

func checkUser(tb testing.TB, want, got *latch.User) {
	tb.Helper()
	var d diff
	d.str("ID", want.ID, got.ID)
	d.str("Username", want.Username, got.Username)
	d.str("PasswordHash", want.PasswordHash, got.PasswordHash)
	d.str("Disabled", fmt.Sprint(want.Disabled), fmt.Sprint(got.Disabled))
	d.list("Roles", want.Roles, got.Roles)
	d.list("Groups", want.Groups, got.Groups)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	d.time("PasswordChangedAt", want.PasswordChangedAt, got.PasswordChangedAt)
	d.str("Email", want.Email, got.Email)
	d.str("EmailVerified", fmt.Sprint(want.EmailVerified), fmt.Sprint(got.EmailVerified))
	d.str("Profile", fmt.Sprintf("%+v", want.Profile), fmt.Sprintf("%+v", got.Profile))
	d.check(tb, "user "+want.ID)
}

func checkSession(tb testing.TB, want, got *latch.Session) {
	tb.Helper()
	var d diff
	d.bytes("IDHash", want.IDHash, got.IDHash)
	d.str("UserID", want.UserID, got.UserID)
	d.time("AuthTime", want.AuthTime, got.AuthTime)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("LastSeenAt", want.LastSeenAt, got.LastSeenAt)
	d.time("IdleExpiresAt", want.IdleExpiresAt, got.IdleExpiresAt)
	d.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	d.str("UserAgent", want.UserAgent, got.UserAgent)
	d.str("Address", want.Address, got.Address)
	d.check(tb, fmt.Sprintf("session %x", want.IDHash[:4]))
}

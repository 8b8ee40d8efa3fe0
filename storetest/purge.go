package storetest

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var purgeTests = []test{
	{"RemovesExpiredOnly", testPurgeExpired},
	{"NothingExpired_ReturnsZero", testPurgeNothing},
	{"RemovesIdleAndAbsoluteExpiredSessions", testPurgeSessions},
}

func testPurgeExpired(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	expired := []*latch.Token{newToken("app", "old1"), newToken("app", "old2")}
	for _, tok := range expired {
		tok.ExpiresAt = base.Add(-time.Second)
		mustCreateToken(t, s, tok)
	}
	live := []*latch.Token{newToken("app", "live"), newToken("app", "edge")}
	live[1].ExpiresAt = base // not before now: kept
	for _, tok := range live {
		mustCreateToken(t, s, tok)
	}

	oldJWT := jwtRevocation("https://issuer.example", "old")
	oldJWT.ExpiresAt = base.Add(-time.Second)
	oldOpaque := opaqueRevocation(sum("old opaque"))
	oldOpaque.ExpiresAt = base.Add(-time.Hour)
	liveJWT := jwtRevocation("https://issuer.example", "live")
	liveOpaque := opaqueRevocation(sum("live opaque"))
	edgeJWT := jwtRevocation("https://issuer.example", "edge")
	edgeJWT.ExpiresAt = base // not before now: kept
	for _, r := range []*latch.Revocation{oldJWT, liveJWT, oldOpaque, liveOpaque, edgeJWT} {
		mustRevoke(t, s, r)
	}

	if n := mustPurgeExpired(t, s, base); n != 4 {
		t.Errorf("PurgeExpired = %d, want 4 (2 tokens + 2 revocations)", n)
	}
	for _, tok := range expired {
		_, err := s.Token(ctx(t), tok.Hash)
		wantCode(t, "Token after purge", err, latch.ErrNotFound)
	}
	for _, tok := range live {
		checkToken(t, tok, mustToken(t, s, tok.Hash))
	}
	if mustIsRevoked(t, s, "https://issuer.example", "old") {
		t.Errorf("purged JWT revocation is still denylisted")
	}
	if !mustIsRevoked(t, s, "https://issuer.example", "live") {
		t.Errorf("live JWT revocation was purged")
	}
	rs := mustRevocationsSince(t, s, 0, 10)
	if len(rs) != 3 {
		t.Fatalf("feed after purge = %d entries, want 3", len(rs))
	}
	checkRevocation(t, liveJWT, rs[0])
	checkRevocation(t, liveOpaque, rs[1])
	checkRevocation(t, edgeJWT, rs[2])

	if n := mustPurgeExpired(t, s, base); n != 0 {
		t.Errorf("second PurgeExpired = %d, want 0", n)
	}
}

func testPurgeNothing(t *testing.T, s latch.Store) {
	if n := mustPurgeExpired(t, s, base); n != 0 {
		t.Errorf("PurgeExpired on an empty store = %d, want 0", n)
	}
	mustCreateClient(t, s, newClient("app"))
	mustCreateToken(t, s, newToken("app", "live"))
	mustRevoke(t, s, jwtRevocation("https://issuer.example", "live"))
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateSession(t, s, newSession("u1", "live"))
	if n := mustPurgeExpired(t, s, base); n != 0 {
		t.Errorf("PurgeExpired with only live rows = %d, want 0", n)
	}
}

func testPurgeSessions(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	idle := newSession("u1", "idle")
	idle.IdleExpiresAt = base.Add(-time.Second)
	absolute := newSession("u1", "absolute")
	absolute.ExpiresAt = base.Add(-time.Second)
	both := newSession("u1", "both")
	both.IdleExpiresAt, both.ExpiresAt = base.Add(-time.Hour), base.Add(-time.Minute)
	live := newSession("u1", "live")
	edge := newSession("u1", "edge")
	edge.IdleExpiresAt, edge.ExpiresAt = base, base // not before now: kept
	for _, sess := range []*latch.Session{idle, absolute, both, live, edge} {
		mustCreateSession(t, s, sess)
	}

	if n := mustPurgeExpired(t, s, base); n != 3 {
		t.Errorf("PurgeExpired = %d, want 3 sessions", n)
	}
	for _, sess := range []*latch.Session{idle, absolute, both} {
		wantNoSession(t, s, "after purge", sess.IDHash)
	}
	for _, sess := range []*latch.Session{live, edge} {
		checkSession(t, sess, mustSession(t, s, sess.IDHash))
	}
	mustUser(t, s, "u1")
	if n := mustPurgeExpired(t, s, base); n != 0 {
		t.Errorf("second PurgeExpired = %d, want 0", n)
	}
}

package loginsession_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/loginsession"
)

// newSessions returns Sessions over a real SQLite store holding one user,
// with a 30-minute idle timeout and a 12-hour maximum age.
func newSessions(t *testing.T, now time.Time) (*loginsession.Sessions, *latch.User) {
	t.Helper()
	store := latchtest.Store(t)
	u := &latch.User{ID: "u1", Username: "alice", CreatedAt: now.Add(-time.Hour)}
	if err := store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return &loginsession.Sessions{Store: store, IdleTimeout: 30 * time.Minute, MaxAge: 12 * time.Hour, Rand: rand.Reader}, u
}

// signedIn is newSessions with a session of the user created at now.
func signedIn(t *testing.T) (m *loginsession.Sessions, u *latch.User, raw string, sess *latch.Session, now time.Time) {
	t.Helper()
	now = time.Unix(1_800_000_000, 0).UTC()
	m, u = newSessions(t, now)
	raw, sess, err := m.Create(context.Background(), u.ID, now, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	return m, u, raw, sess, now
}

func TestSessions_CreateThenCurrent_FindsTheUser(t *testing.T) {
	ctx := context.Background()
	m, u, raw, sess, now := signedIn(t)
	if !loginsession.ValidRawID(raw) || !bytes.Equal(sess.IDHash, loginsession.HashID(raw)) {
		t.Fatalf("Create returned raw %q whose hash is not the stored one", raw)
	}
	got, gu, err := m.Current(ctx, raw, now.Add(time.Minute))
	if err != nil || got == nil || gu == nil || gu.ID != u.ID {
		t.Fatalf("Current = %v, %v, %v; want the session of %s", got, gu, err, u.ID)
	}
}

func TestSessions_Current_RefusesMalformedUnknownIdleAndAged(t *testing.T) {
	ctx := context.Background()
	m, u, raw, _, now := signedIn(t)
	other, err := loginsession.NewRandomID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  string
		at   time.Time
	}{
		{"malformed", raw[:len(raw)-1], now},
		{"unknown", other, now},
		{"idle past the timeout", raw, now.Add(31 * time.Minute)},
	} {
		if s, _, err := m.Current(ctx, tc.raw, tc.at); s != nil || err != nil {
			t.Errorf("%s: Current = %v, %v; want no session and no error", tc.name, s, err)
		}
	}

	// Kept active by a request every 20 minutes, it still ends at MaxAge.
	raw, _, err = m.Create(ctx, u.ID, now, "", "")
	if err != nil {
		t.Fatal(err)
	}
	at := now
	for at.Before(now.Add(12*time.Hour - 20*time.Minute)) {
		at = at.Add(20 * time.Minute)
		if s, _, err := m.Current(ctx, raw, at); s == nil || err != nil {
			t.Fatalf("at +%v: Current = %v, %v; want the session (each request moves the idle expiry)", at.Sub(now), s, err)
		}
	}
	if s, _, err := m.Current(ctx, raw, now.Add(12*time.Hour)); s != nil || err != nil {
		t.Fatalf("at MaxAge: Current = %v, %v; want no session", s, err)
	}
}

func TestSessions_PasswordChangeAfterLogin_EndsTheSession(t *testing.T) {
	ctx := context.Background()
	m, u, raw, _, now := signedIn(t)
	u.PasswordChangedAt = now.Add(time.Second)
	if err := m.Store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if s, _, err := m.Current(ctx, raw, now.Add(2*time.Second)); s != nil || err != nil {
		t.Fatalf("Current after a password change = %v, %v; want no session", s, err)
	}
}

func TestEnd_DeletesTheSession_AndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	m, _, raw, sess, now := signedIn(t)
	for i := range 2 {
		if err := loginsession.End(ctx, m.Store, sess, now, nil); err != nil {
			t.Fatalf("End #%d: %v", i+1, err)
		}
	}
	if s, _, err := m.Current(ctx, raw, now); s != nil || err != nil {
		t.Fatalf("Current after End = %v, %v; want no session", s, err)
	}
}

func TestCSRF_TokensOfTheTwoKindsDiffer_AndMatchOnlyThemselves(t *testing.T) {
	raw, err := loginsession.NewRandomID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, l := loginsession.CSRFToken(raw), loginsession.LoginCSRFToken(raw)
	if s == l {
		t.Fatal("the session and login CSRF tokens of one value are equal: one could serve as the other")
	}
	if !loginsession.CSRFMatches(s, loginsession.CSRFToken(raw)) || loginsession.CSRFMatches(l, s) || loginsession.CSRFMatches("", "") {
		t.Fatal("CSRFMatches accepts a wrong or empty token, or refuses the right one")
	}
}

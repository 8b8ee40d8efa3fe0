package storetest

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var sessionTests = []test{
	{"Create_RoundTripsEveryField", testSessionRoundTrip},
	{"Create_DuplicateIDHash_IsConflict", testSessionDuplicate},
	{"Create_UnknownUserOrEmptyHash_IsInvalid", testSessionInvalid},
	{"Create_KeepsNoReferenceToInput", testSessionCopies},
	{"Get_Missing_IsNotFound", testSessionMissing},
	{"Get_Expired_IsReturned", testSessionExpired},
	{"Touch_MovesLastSeenAndIdleExpiryOnly", testSessionTouch},
	{"Touch_Missing_IsNotFound", testSessionTouchMissing},
	{"Active_IdleAndAbsoluteTimeoutsBothApply", testSessionTimeouts},
	{"Delete_RemovesThatSessionOnly", testSessionDelete},
	{"Delete_Missing_IsNotFound", testSessionDeleteMissing},
	{"DeleteUserSessions_CountsAndSparesOtherUsers", testSessionDeleteUser},
	{"UserSessions_OldestFirstOnlyTheUsers", testUserSessions},
}

func testUserSessions(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateUser(t, s, newUser("u2", "bob"))
	older, newer := newSession("u1", "older"), newSession("u1", "newer")
	newer.CreatedAt = older.CreatedAt.Add(time.Minute)
	mustCreateSession(t, s, newer)
	mustCreateSession(t, s, older)
	mustCreateSession(t, s, newSession("u2", "bobs"))
	got, err := s.UserSessions(ctx(t), "u1")
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("UserSessions(u1) = %d sessions, want 2", len(got))
	}
	checkSession(t, older, got[0])
	checkSession(t, newer, got[1])
	for _, id := range []string{"u3", ""} {
		if got, err := s.UserSessions(ctx(t), id); err != nil || len(got) != 0 {
			t.Errorf("UserSessions(%q) = %d, %v; want none", id, len(got), err)
		}
	}
}

func testSessionRoundTrip(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	want := newSession("u1", "s1")
	mustCreateSession(t, s, want)
	got := mustSession(t, s, want.IDHash)
	checkSession(t, want, got)
	if !got.Active(base) {
		t.Error("Active(base) = false, want true")
	}
}

func testSessionDuplicate(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateUser(t, s, newUser("u2", "mallory"))
	want := newSession("u1", "s1")
	mustCreateSession(t, s, want)
	other := newSession("u2", "s1")
	wantCode(t, "CreateSession(duplicate)", s.CreateSession(ctx(t), other), latch.ErrConflict)
	checkSession(t, want, mustSession(t, s, want.IDHash))
}

func testSessionInvalid(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	ghost := newSession("ghost", "s1")
	wantCode(t, "CreateSession(unknown user)", s.CreateSession(ctx(t), ghost), &latch.Error{Code: latch.EINVALID})
	wantNoSession(t, s, "of an unknown user", ghost.IDHash)

	empty := newSession("u1", "s2")
	empty.IDHash = nil
	wantCode(t, "CreateSession(empty hash)", s.CreateSession(ctx(t), empty), &latch.Error{Code: latch.EINVALID})
}

func testSessionCopies(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	sess := newSession("u1", "s1")
	mustCreateSession(t, s, sess)
	sess.IDHash[0] ^= 0xff
	got := mustSession(t, s, newSession("u1", "s1").IDHash)
	checkSession(t, newSession("u1", "s1"), got)
	got.IDHash[0] ^= 0xff
	checkSession(t, newSession("u1", "s1"), mustSession(t, s, newSession("u1", "s1").IDHash))
}

func testSessionMissing(t *testing.T, s latch.Store) {
	wantNoSession(t, s, "never created", sum("nope"))
	_, err := s.Session(ctx(t), nil)
	wantCode(t, "Session(nil)", err, latch.ErrNotFound)
}

func testSessionExpired(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	idle := newSession("u1", "idle")
	idle.IdleExpiresAt = base.Add(-time.Second)
	absolute := newSession("u1", "absolute")
	absolute.ExpiresAt = base.Add(-time.Second)
	for _, want := range []*latch.Session{idle, absolute} {
		mustCreateSession(t, s, want)
		got := mustSession(t, s, want.IDHash)
		checkSession(t, want, got)
		if got.Active(base) {
			t.Errorf("expired session %x: Active(base) = true", want.IDHash[:4])
		}
	}
}

func testSessionTouch(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	sess := newSession("u1", "s1")
	other := newSession("u1", "s2")
	mustCreateSession(t, s, sess)
	mustCreateSession(t, s, other)

	seen := base.Add(10 * time.Minute)
	if err := s.TouchSession(ctx(t), sess.IDHash, seen, seen.Add(30*time.Minute)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	want := *sess
	want.LastSeenAt, want.IdleExpiresAt = seen, seen.Add(30*time.Minute)
	checkSession(t, &want, mustSession(t, s, sess.IDHash))
	checkSession(t, other, mustSession(t, s, other.IDHash))
}

func testSessionTouchMissing(t *testing.T, s latch.Store) {
	err := s.TouchSession(ctx(t), sum("nope"), base, base.Add(time.Minute))
	wantCode(t, "TouchSession(missing)", err, latch.ErrNotFound)
	wantNoSession(t, s, "after TouchSession(missing)", sum("nope"))
}

// security invariant 6, through the store: activity extends the idle
// timeout, never the absolute one.
func testSessionTimeouts(t *testing.T, s latch.Store) {
	const idle = 30 * time.Minute
	mustCreateUser(t, s, newUser("u1", "alice"))
	sess := &latch.Session{
		IDHash:        sum("timeouts"),
		UserID:        "u1",
		AuthTime:      base,
		CreatedAt:     base,
		LastSeenAt:    base,
		IdleExpiresAt: base.Add(idle),
		ExpiresAt:     base.Add(time.Hour),
	}
	mustCreateSession(t, s, sess)
	active := func(at time.Time) bool { return mustSession(t, s, sess.IDHash).Active(at) }

	if !active(base.Add(idle - time.Millisecond)) {
		t.Error("not active just before the idle timeout")
	}
	if active(base.Add(idle)) {
		t.Error("active at the idle timeout")
	}
	// A request at +20m keeps it alive until +50m...
	seen := base.Add(20 * time.Minute)
	if err := s.TouchSession(ctx(t), sess.IDHash, seen, seen.Add(idle)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if !active(base.Add(idle + time.Minute)) {
		t.Error("not active after a touch moved the idle timeout")
	}
	// ...and a request at +50m until +80m, but the absolute timeout at +60m wins.
	seen = base.Add(50 * time.Minute)
	if err := s.TouchSession(ctx(t), sess.IDHash, seen, seen.Add(idle)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if !active(base.Add(time.Hour - time.Millisecond)) {
		t.Error("not active just before the absolute timeout")
	}
	if active(base.Add(time.Hour)) {
		t.Error("active at the absolute timeout although touched")
	}
	if got := mustSession(t, s, sess.IDHash).ExpiresAt; got.Sub(base.Add(time.Hour)).Abs() > timeTolerance {
		t.Errorf("TouchSession moved ExpiresAt to %v", got)
	}
}

func testSessionDelete(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	gone, kept := newSession("u1", "gone"), newSession("u1", "kept")
	mustCreateSession(t, s, gone)
	mustCreateSession(t, s, kept)
	if err := s.DeleteSession(ctx(t), gone.IDHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNoSession(t, s, "after DeleteSession", gone.IDHash)
	checkSession(t, kept, mustSession(t, s, kept.IDHash))
	mustUser(t, s, "u1")
	wantCode(t, "DeleteSession twice", s.DeleteSession(ctx(t), gone.IDHash), latch.ErrNotFound)
}

func testSessionDeleteMissing(t *testing.T, s latch.Store) {
	wantCode(t, "DeleteSession(missing)", s.DeleteSession(ctx(t), sum("nope")), latch.ErrNotFound)
}

func testSessionDeleteUser(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateUser(t, s, newUser("u2", "bob"))
	mine := []*latch.Session{newSession("u1", "a1"), newSession("u1", "a2"), newSession("u1", "a3")}
	mine[2].ExpiresAt = base.Add(-time.Hour) // expired ones go too
	theirs := []*latch.Session{newSession("u2", "b1"), newSession("u2", "b2")}
	for _, sess := range append(mine, theirs...) {
		mustCreateSession(t, s, sess)
	}

	n, err := s.DeleteUserSessions(ctx(t), "u1")
	if err != nil || n != 3 {
		t.Fatalf("DeleteUserSessions(u1) = %d, %v; want 3, nil", n, err)
	}
	for _, sess := range mine {
		wantNoSession(t, s, "after DeleteUserSessions", sess.IDHash)
	}
	for _, sess := range theirs {
		checkSession(t, sess, mustSession(t, s, sess.IDHash))
	}
	mustUser(t, s, "u1") // the user stays

	for _, id := range []string{"u1", "ghost"} {
		n, err := s.DeleteUserSessions(ctx(t), id)
		if err != nil || n != 0 {
			t.Errorf("DeleteUserSessions(%s) with no sessions = %d, %v; want 0, nil", id, n, err)
		}
	}
}

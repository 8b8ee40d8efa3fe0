package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSessionCookie_Attributes: the session cookie is one the browser
// keeps to this origin and never shows to scripts (OWASP Session
// Management Cheat Sheet, cookies).
func TestSessionCookie_Attributes(t *testing.T) {
	rec := httptest.NewRecorder()
	setCookie(rec, sessionCookie, "v", 8*time.Hour)
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("%d cookies", len(cs))
	}
	c := cs[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 8*3600 {
		t.Fatalf("cookie %+v", c)
	}
}

// TestSession_Timeouts: a session ends after the idle timeout without a
// request, and after the absolute one however active.
func TestSession_Timeouts(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &app{idle: 30 * time.Minute, maxAge: 8 * time.Hour, sessions: map[[32]byte]*session{}, now: func() time.Time { return now }}
	a.sessions[key("id")] = &session{user: "u", created: now, lastSeen: now}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "id"})
	for i := 0; i < 20; i++ { // active every 25 minutes for over 8 hours
		now = now.Add(25 * time.Minute)
		s := a.current(req)
		if i < 19 && s == nil {
			t.Fatalf("active session ended after %v", time.Duration(i+1)*25*time.Minute)
		}
		if i == 19 && s != nil {
			t.Fatal("session outlived its absolute timeout")
		}
	}
	a.sessions[key("id")] = &session{user: "u", created: now, lastSeen: now}
	now = now.Add(31 * time.Minute)
	if a.current(req) != nil {
		t.Fatal("session outlived its idle timeout")
	}
}

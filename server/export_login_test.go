package server

import (
	"net/http"
	"time"

	"github.com/latch-auth/latch"
)

// Test-only access to the login pieces that the authorization
// endpoint calls and that the tests must prove (compiled into tests only).

// SetPasswordHook makes s call hook before each argon2 verification of a
// login, with "verify" (a real hash) or "dummy" (password.DummyVerify).
// Set it before s serves a request.
func SetPasswordHook(s *Server, hook func(kind string)) { s.passwordHook = hook }

func RenderConsent(s *Server, w http.ResponseWriter, r *http.Request, sess *latch.Session, v ConsentView) {
	s.renderConsent(w, r, sess, v)
}

func CheckCSRF(s *Server, r *http.Request, sess *latch.Session) bool { return s.checkCSRF(r, sess) }

func CurrentSession(s *Server, w http.ResponseWriter, r *http.Request) (*latch.Session, *latch.User, error) {
	return s.currentSession(w, r)
}

func RenderError(s *Server, w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	s.renderError(w, r, status, title, detail)
}

// SetSharedThrottleRetry sets how long s leaves a failed shared login
// throttle alone (default 1s); set it before s serves a request.
func SetSharedThrottleRetry(s *Server, d time.Duration) {
	s.accountThrottle.retry, s.addrThrottle.retry = d, d
}

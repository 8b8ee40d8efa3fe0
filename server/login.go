package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/loginsession"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/throttle"
)

// The login flow: the sign-in form and its POST (throttled per account and
// per address, argon2 in bounded slots, a constant-time miss), the account
// page and logout. pages.go holds the templates and how pages are rendered.

// loginForm is GET /login?return_to=PATH[&prompt=login]. Signed in, it
// goes straight on to return_to, unless prompt=login asks to
// re-authenticate (OIDC Core §3.1.2.1).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	v := loginView{ReturnTo: safeReturnTo(q.Get("return_to"))}
	_, u, err := s.currentSession(w, r)
	if err != nil {
		return err
	}
	if u != nil {
		if q.Get("prompt") != "login" {
			redirect(w, v.ReturnTo)
			return nil
		}
		v.SignedInAs, v.Username = u.Username, u.Username
	}
	switch q.Get("signed_out") {
	case "1":
		v.Notice = "You have signed out."
	case "all":
		v.Notice = "You have signed out in every browser and on every device."
	}
	return s.renderLogin(w, r, http.StatusOK, v)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) error {
	tok, err := s.loginCSRF(w, r)
	if err != nil {
		return err
	}
	v.page, v.CSRF = newPage("Sign in"), tok
	v.NameLabel = map[LoginName]string{LoginUsername: "Username", LoginEmail: "Email", LoginUsernameOrEmail: "Username or email"}[s.cfg.LoginName]
	v.AppName = s.appOf(r.Context(), v.ReturnTo)
	return s.renderPage(w, status, loginPage, v, false)
}

// appOf returns the name of the registered client whose authorization
// request returnTo is, or "". Only a registered client's name is shown:
// a client_id from the URL, unchecked, would let anyone write on the page.
func (s *Server) appOf(ctx context.Context, returnTo string) string {
	u, err := url.Parse(returnTo)
	if err != nil || u.Path != "/oauth2/authorize" {
		return ""
	}
	id := u.Query().Get("client_id")
	if id == "" {
		return ""
	}
	c, err := s.clients.Client(ctx, id)
	if err != nil {
		return ""
	}
	return c.Name
}

// Login outcomes shown on the form. One message for every credential
// failure (unknown user, wrong password, disabled user, user without a
// password): the page must not tell which usernames exist (OWASP
// Authentication Cheat Sheet, "Authentication and Error Messages").
const (
	msgBadCredentials = "Incorrect username or password."
	msgCSRF           = "This sign-in form has expired or did not come from this site. Please sign in again."
	msgMissing        = "Enter your username and your password."
	msgBusy           = "The server is busy. Try again in a moment."
)

// login is POST /login: CSRF and Origin, throttling, credentials, then a
// new session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	if !s.parsePageForm(w, r, "sign-in") {
		return nil
	}
	f := r.PostForm // never the URL query: a password in a URL lands in logs
	// Usernames hold no spaces, so trimming only forgives an autofill.
	username, pw := strings.TrimSpace(f.Get("username")), f.Get("password")
	// The username is not echoed back: the answer for an unknown user
	// must be byte-identical to the one for a wrong password.
	v := loginView{ReturnTo: safeReturnTo(f.Get("return_to"))}
	if seen, ok := s.checkLoginCSRF(r); !ok {
		s.metrics.login("csrf")
		v.Error = msgCSRF
		if openedElsewhere(r, seen) {
			v.OpenedAt, v.IssuerOrigin = seen, s.origin
			v.IssuerLogin = s.endpoint("/login")
			if v.ReturnTo != "/" {
				v.IssuerLogin += "?" + url.Values{"return_to": {v.ReturnTo}}.Encode()
			}
		}
		return s.renderLogin(w, r, http.StatusForbidden, v)
	}
	if username == "" || pw == "" {
		s.metrics.login("invalid")
		v.Error = msgMissing
		return s.renderLogin(w, r, http.StatusBadRequest, v)
	}

	u, result, wait, err := s.checkCredentials(r, username, pw)
	if err != nil {
		return err
	}
	s.metrics.login(result)
	switch result {
	case "throttled":
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		v.Error = fmt.Sprintf("Too many failed sign-in attempts. Wait %s, then try again.", humanSeconds(secs))
		return s.renderLogin(w, r, http.StatusTooManyRequests, v)
	case "busy":
		w.Header().Set("Retry-After", "1")
		v.Error = msgBusy
		return s.renderLogin(w, r, http.StatusServiceUnavailable, v)
	case "bad_credentials":
		v.Error = msgBadCredentials
		return s.renderLogin(w, r, http.StatusUnprocessableEntity, v)
	}
	now := s.now()

	// A new session, always: the one the request carried, if any, is
	// deleted, whoever it belonged to, so that an ID planted before login
	// (session fixation) is dead afterwards. It is replaced, not ended
	// as by logout: what the user approved under it stays approved.
	if old := sessionCookieValue(r); old != "" {
		if err := s.store.DeleteSession(r.Context(), loginsession.HashID(old)); err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
			return err
		}
	}
	raw, _, err := s.createSession(r.Context(), r, u.ID, now)
	if err != nil {
		return err
	}
	setCookie(w, sessionCookie, raw, http.SameSiteLaxMode, 0)
	setCookie(w, loginCookie, "", http.SameSiteStrictMode, -1)
	redirect(w, v.ReturnTo)
	return nil
}

// checkCredentials checks a username and password as every password
// login does (the form and the password grant): refused without argon2
// during a back-off of the account or the client's address, so a right
// password then gets exactly the answer of a wrong one; at most
// MaxConcurrentLogins verifications at once; a failure lengthens both
// back-offs, a success clears the account's. result is the
// latch_login_attempts_total label: success, bad_credentials, throttled
// (wait says for how long) or busy. err is a failing store only.
func (s *Server) checkCredentials(r *http.Request, username, pw string) (u *latch.User, result string, wait time.Duration, err error) {
	ctx := r.Context()
	// The user is looked up before the throttle is asked, so that the
	// username and the email of one user share one back-off.
	known, err := s.loginUser(ctx, username)
	if err != nil {
		return nil, "", 0, err
	}
	account := throttle.Key(accountKey(known, username))
	addr := throttle.Key(clientAddr(r, s.cfg.TrustedProxies))
	now := s.now()
	if wait := max(s.accountThrottle.blocked(ctx, account, now), s.addrThrottle.blocked(ctx, addr, now)); wait > 0 {
		return nil, "throttled", wait, nil
	}
	release, ok := s.acquireLoginSlot(r.Context())
	if !ok {
		return nil, "busy", 0, nil
	}
	u, err = s.authenticate(r.Context(), known, pw)
	release()
	if err != nil {
		return nil, "", 0, err
	}
	if u == nil {
		now = s.now()
		if s.accountThrottle.fail(ctx, account, now) {
			s.metrics.backoff("account")
		}
		if s.addrThrottle.fail(ctx, addr, now) {
			s.metrics.backoff("address")
		}
		return nil, "bad_credentials", 0, nil
	}
	s.accountThrottle.reset(ctx, account)
	return u, "success", 0, nil
}

func humanSeconds(n int) string {
	switch {
	case n == 1:
		return "1 second"
	case n < 120:
		return strconv.Itoa(n) + " seconds"
	default:
		return strconv.Itoa((n+59)/60) + " minutes"
	}
}

// accountKey is the per-account throttle's key: the normalized username,
// the user's when the name typed is a user's username or email (so both
// count against one allowance), otherwise the name typed, whether or not
// such a user exists, so that the throttle itself does not tell which do.
func accountKey(u *latch.User, username string) string {
	if u != nil {
		username = u.Username
	}
	if n, err := latch.NormalizeUsername(username); err == nil {
		return "user:" + n
	}
	return "invalid:" + strings.ToLower(username)
}

// acquireLoginSlot takes one of MaxConcurrentLogins slots for an argon2
// verification, waiting at most LoginQueueTimeout: each one holds tens of
// MiB for tens of milliseconds, and an unbounded burst would exhaust
// memory before CPU.
func (s *Server) acquireLoginSlot(ctx context.Context) (release func(), ok bool) {
	release = func() { <-s.loginSlots }
	select {
	case s.loginSlots <- struct{}{}:
		return release, true
	default:
	}
	t := time.NewTimer(s.cfg.LoginQueueTimeout)
	defer t.Stop()
	select {
	case s.loginSlots <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// authenticate returns u (the user the login form named, or nil) if pw is
// its password and it may log in, or nil when not, for any reason: unknown user, wrong password,
// disabled user, user without a password. Every one of those runs argon2
// exactly once (against a dummy hash when there is no real one to check,
// password.DummyVerify), so the response time does not tell them apart.
// It errors only when the store fails.
func (s *Server) authenticate(ctx context.Context, u *latch.User, pw string) (*latch.User, error) {
	if len(pw) > password.MaxPasswordLen {
		// No hash can match; password.Verify and DummyVerify both refuse it
		// before any work, for every user alike.
		return nil, nil
	}
	if u == nil || u.PasswordHash == "" {
		s.dummyVerify(pw)
		return nil, nil
	}
	ok, err := s.verifyPassword(pw, u.PasswordHash)
	if err != nil {
		// The stored hash is unreadable (the password was checked above):
		// an operator's problem, not the user's. Pay the cost anyway.
		s.log.ErrorContext(ctx, "login: stored password hash is unreadable; reset the user's password", "user", u.ID, "err", err)
		s.dummyVerify(pw)
		return nil, nil
	}
	if !ok || u.Disabled {
		return nil, nil
	}
	s.rehash(ctx, u, pw)
	return u, nil
}

// rehash stores the password under the configured argon2id parameters
// when the user's hash was made with others (OWASP Password Storage Cheat
// Sheet, "Upgrading the work factor"): raising --argon2-* reaches every
// user who logs in. The update is conditional on the hash being unchanged,
// so it never undoes a password change made meanwhile. A failure is
// logged, never the login's: the old hash still works.
func (s *Server) rehash(ctx context.Context, u *latch.User, pw string) {
	p := s.cfg.PasswordParams
	if p == (password.Params{}) {
		p = password.DefaultParams
	}
	if !password.NeedsRehash(u.PasswordHash, p) {
		return
	}
	if s.passwordHook != nil {
		s.passwordHook("rehash")
	}
	h, err := password.Hash(pw, p, s.rand)
	if err == nil {
		var done bool
		if done, err = s.store.RehashPassword(ctx, u.ID, u.PasswordHash, h); err == nil && done {
			u.PasswordHash = h
			s.log.InfoContext(ctx, "login: password rehashed with the configured parameters", "user", u.ID)
		}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "login: rehashing the password failed; the old hash stays", "user", u.ID, "err", err)
	}
}

// verifyPassword and dummyVerify are the only two places argon2 runs for
// a login; passwordHook lets a test count them.
func (s *Server) verifyPassword(pw, hash string) (bool, error) {
	if s.passwordHook != nil {
		s.passwordHook("verify")
	}
	return password.Verify(pw, hash)
}

func (s *Server) dummyVerify(pw string) {
	if s.passwordHook != nil {
		s.passwordHook("dummy")
	}
	p := s.cfg.PasswordParams
	if p == (password.Params{}) {
		p = password.DefaultParams
	}
	_ = password.DummyVerify(pw, p)
}

// logout is POST /logout: it ends the session (everywhere=1: every
// session of the user), deletes the cookie and goes to the login page.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if !s.parsePageForm(w, r, "sign-out") {
		return nil
	}
	sess, u, err := s.currentSession(w, r)
	if err != nil {
		return err
	}
	if sess == nil {
		// Nothing to end (expired, or signed out in another tab): only
		// the cookie to drop, which no cross-site request can abuse.
		setCookie(w, sessionCookie, "", http.SameSiteLaxMode, -1)
		redirect(w, "/login?signed_out=1")
		return nil
	}
	if !s.checkCSRF(r, sess) {
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This sign-out form has expired or did not come from this site. Go back, reload the page and try again.")
		return nil
	}
	to := "/login?signed_out=1"
	if r.PostForm.Get("everywhere") == "1" {
		if _, err := s.users().LogoutEverywhere(r.Context(), u.ID); err != nil {
			return err
		}
		to = "/login?signed_out=all"
	} else if err := s.endSession(r.Context(), sess); err != nil {
		return err
	}
	setCookie(w, sessionCookie, "", http.SameSiteLaxMode, -1)
	redirect(w, to)
	return nil
}

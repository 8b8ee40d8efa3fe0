package server

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latch-auth/latch"
)

// The account page, GET /account (and GET /): what the signed-in user can
// see and end by themselves, rendered on the server like the login page,
// under the same CSP, with every form carrying the session's CSRF token and
// checked by checkCSRF (Origin and token):
//   - their login sessions, with the device (describeDevice), address,
//     start and last activity, and "Sign out" per session
//     (POST /account/sessions/end) and "Sign out everywhere" (POST /logout);
//   - the applications holding a grant (a live refresh family) or a
//     remembered consent, with "Remove access" (POST /account/apps/remove,
//     revokeAccess);
//   - change password (POST /account/password): the current password is
//     checked like a login, with the same per-account and per-address
//     throttle, so the form is no way around it.

const accountPath = "/account"

func (s *Server) accountRoutes(m *http.ServeMux) {
	m.Handle("GET /{$}", s.page("account", s.atIssuer(s.account)))
	m.Handle("GET "+accountPath, s.page("account", s.atIssuer(s.account)))
	m.Handle("POST "+accountPath+"/sessions/end", s.page("account", s.accountEndSession))
	m.Handle("POST "+accountPath+"/apps/remove", s.page("account", s.accountRemoveApp))
	m.Handle("POST "+accountPath+"/password", s.page("account", s.accountPassword))
}

type accountView struct {
	page
	Username, CSRF string
	// Email is the user's address, when the operator set one.
	Email         string
	EmailVerified bool
	Notice        string
	Sessions      []sessionRow
	Apps          []appRow
	// PasswordError is the change-password form's refusal, shown beside it.
	PasswordError string
}

type sessionRow struct {
	SID, Device, UserAgent, Address string
	Started, LastSeen               string
	Current                         bool
}

type appRow struct {
	ClientID, Name string
	Scopes         []scopeView
	Since          string
	// Grants counts the live refresh families: the app can act without
	// the user while any lives.
	Grants int
}

// Notices after a form, by the done query parameter of the redirect.
var accountNotices = map[string]string{
	"session":  "That session has been signed out.",
	"app":      "The application's access has been removed.",
	"password": "Your password has been changed. Every other session has been signed out.",
}

// account is GET /account: signed in, the page; otherwise the login page,
// which comes back here.
func (s *Server) account(w http.ResponseWriter, r *http.Request) error {
	sess, u, err := s.currentSession(w, r)
	if err != nil {
		return err
	}
	if u == nil {
		to := "/login" // whose return_to defaults to /
		if r.URL.Path != "/" {
			to += "?" + url.Values{"return_to": {r.URL.Path}}.Encode()
		}
		redirect(w, to)
		return nil
	}
	v := accountView{Notice: accountNotices[r.URL.Query().Get("done")]}
	return s.renderAccount(w, r, http.StatusOK, sess, u, v)
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, sess *latch.Session, u *latch.User, v accountView) error {
	ctx := r.Context()
	now := s.now()
	ss, err := s.store.UserSessions(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, x := range ss {
		if !x.Active(now) || x.AuthTime.Before(u.PasswordChangedAt) {
			continue
		}
		v.Sessions = append(v.Sessions, sessionRow{SID: x.SID(), Device: describeDevice(x.UserAgent),
			UserAgent: x.UserAgent, Address: cmp.Or(x.Address, "unknown"),
			Started: showTime(x.CreatedAt), LastSeen: showTime(x.LastSeenAt), Current: x.SID() == sess.SID()})
	}
	// The current session first, then the most recently used.
	slices.SortStableFunc(v.Sessions, func(a, b sessionRow) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return strings.Compare(b.LastSeen, a.LastSeen)
	})
	if v.Apps, err = s.accountApps(r, u, now); err != nil {
		return err
	}
	v.page, v.Username, v.CSRF = newPage("Your account"), u.Username, sessionCSRF(r)
	v.Email, v.EmailVerified = u.Email, u.EmailVerified
	return s.renderPage(w, status, accountPage, v, true)
}

// accountApps lists the applications the user has granted something:
// live refresh families and remembered consents, one row per client.
func (s *Server) accountApps(r *http.Request, u *latch.User, now time.Time) ([]appRow, error) {
	ctx := r.Context()
	fs, err := s.store.UserFamilies(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	cs, err := s.store.UserConsents(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	type app struct {
		scope  []string
		since  time.Time
		grants int
	}
	apps := map[string]*app{}
	add := func(clientID string, scope []string, since time.Time) *app {
		a := apps[clientID]
		if a == nil {
			a = &app{since: since}
			apps[clientID] = a
		}
		if since.Before(a.since) {
			a.since = since
		}
		for _, sc := range scope {
			if !slices.Contains(a.scope, sc) {
				a.scope = append(a.scope, sc)
			}
		}
		return a
	}
	for _, f := range fs {
		if !now.Before(f.ExpiresAt) {
			continue
		}
		add(f.ClientID, f.Scope, f.CreatedAt).grants++
	}
	for _, c := range cs {
		add(c.ClientID, c.Scope, c.CreatedAt)
	}
	out := make([]appRow, 0, len(apps))
	for id, a := range apps {
		name := id
		if c, err := s.clients.Client(ctx, id); err == nil {
			name = appName(c)
		} else if latch.ErrorCode(err) != latch.ENOTFOUND {
			return nil, err
		}
		slices.Sort(a.scope)
		out = append(out, appRow{ClientID: id, Name: name, Scopes: describeScopes(a.scope), Since: showTime(a.since), Grants: a.grants})
	}
	slices.SortFunc(out, func(a, b appRow) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.ClientID, b.ClientID))
	})
	return out, nil
}

// showTime is how the account page shows a time: UTC to the minute, the
// same for every reader whatever the server's zone.
func showTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// accountForm parses a POST of the account page and checks it came from
// the page, for the signed-in user. ok false: the answer is written.
func (s *Server) accountForm(w http.ResponseWriter, r *http.Request, what string) (sess *latch.Session, u *latch.User, ok bool, err error) {
	if !s.parsePageForm(w, r, what) {
		return nil, nil, false, nil
	}
	sess, u, err = s.currentSession(w, r)
	if err != nil {
		return nil, nil, false, err
	}
	if u == nil {
		redirect(w, "/login?"+url.Values{"return_to": {accountPath}}.Encode())
		return nil, nil, false, nil
	}
	if !s.checkCSRF(r, sess) {
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This "+what+" form has expired or did not come from this site. Go back, reload the page and try again.")
		return nil, nil, false, nil
	}
	return sess, u, true, nil
}

// accountEndSession is POST /account/sessions/end: sign out one session
// (sid), with the grants it approved. The browser's own is a logout.
func (s *Server) accountEndSession(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := s.accountForm(w, r, "sign-out")
	if !ok {
		return err
	}
	sid := r.PostForm.Get("sid")
	err = s.users().EndSession(r.Context(), u.ID, sid)
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		// Ended meanwhile (expired, or signed out elsewhere): nothing to do.
		redirect(w, accountPath+"?done=session")
		return nil
	} else if err != nil {
		return err
	}
	if sid == sess.SID() {
		setCookie(w, sessionCookie, "", http.SameSiteLaxMode, -1)
		redirect(w, "/login?signed_out=1")
		return nil
	}
	redirect(w, accountPath+"?done=session")
	return nil
}

// accountRemoveApp is POST /account/apps/remove: the client loses the
// user's consent and every grant (revokeAccess).
func (s *Server) accountRemoveApp(w http.ResponseWriter, r *http.Request) error {
	_, u, ok, err := s.accountForm(w, r, "remove-access")
	if !ok {
		return err
	}
	clientID := r.PostForm.Get("client_id")
	if clientID == "" || len(clientID) > 128 {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "The form names no application.")
		return nil
	}
	n, err := s.revokeAccess(r.Context(), u.ID, clientID)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "account: access removed", "user", u.ID, "client", clientID, "families_revoked", n)
	redirect(w, accountPath+"?done=app")
	return nil
}

// Change-password refusals. A wrong current password gets the login
// form's answer to a wrong password, throttled alike.
const (
	msgPasswordCurrent  = "Your current password is not correct."
	msgPasswordMismatch = "The new password and its confirmation differ."
	msgPasswordMissing  = "Enter your current password and the new one twice."
)

// accountPassword is POST /account/password: the current password, the
// new one twice. The change ends every session and grant of the user (as
// Users.SetPassword always does) and signs this browser in again with a
// new session, so the user stays on the page.
func (s *Server) accountPassword(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := s.accountForm(w, r, "change-password")
	if !ok {
		return err
	}
	f := r.PostForm
	current, pw, confirm := f.Get("current_password"), f.Get("new_password"), f.Get("confirm_password")
	refuse := func(status int, msg string) error {
		return s.renderAccount(w, r, status, sess, u, accountView{PasswordError: msg})
	}
	if current == "" || pw == "" || confirm == "" {
		return refuse(http.StatusBadRequest, msgPasswordMissing)
	}
	_, result, wait, err := s.checkCredentials(r, u.Username, current)
	if err != nil {
		return err
	}
	switch result {
	case "throttled":
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return refuse(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts. Wait %s, then try again.", humanSeconds(secs)))
	case "busy":
		w.Header().Set("Retry-After", "1")
		return refuse(http.StatusServiceUnavailable, msgBusy)
	case "bad_credentials":
		return refuse(http.StatusUnprocessableEntity, msgPasswordCurrent)
	}
	if pw != confirm {
		return refuse(http.StatusBadRequest, msgPasswordMismatch)
	}
	if _, err := s.users().SetPassword(r.Context(), u.ID, pw); err != nil {
		var le *latch.Error
		if errors.As(err, &le) && le.Code == latch.EINVALID {
			return refuse(http.StatusBadRequest, passwordPolicyMessage(le))
		}
		return err
	}
	raw, _, err := s.createSession(r.Context(), r, u.ID, s.now())
	if err != nil {
		return err
	}
	setCookie(w, sessionCookie, raw, http.SameSiteLaxMode, 0)
	redirect(w, accountPath+"?done=password")
	return nil
}

// passwordPolicyMessage turns Users' refusal ("user: password is …") into
// a sentence for the page.
func passwordPolicyMessage(e *latch.Error) string {
	msg := strings.TrimPrefix(e.Message, "user: ")
	if msg == "" {
		return "The new password is not accepted."
	}
	return "The new password is not accepted: " + msg + "."
}

package server

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/loginsession"
)

// CSRF defence (OWASP CSRF Prevention Cheat Sheet): every form that
// changes state carries a synchronizer token, and every POST must come
// from the issuer's own origin, by its Origin header or, failing that, its
// Sec-Fetch-Site header. A request with neither (not a browser, or a very
// old one) is judged by the token alone.
//
// Signed in, the token is HMAC-SHA256 keyed with the raw session ID over
// loginsession's label (latch.Session's doc says why it is derived and not stored).
// Before login there is no session, yet the login form needs a token too
// (login CSRF: a site logging the victim in to the attacker's account). A
// pre-session cookie, __Host-latch_login, holds 256 random bits for that,
// and the login form's token is the HMAC of that cookie over
// another label: only a page of this origin, which saw the cookie set,
// can have the matching token. The cookie is SameSite=Strict (it is only
// ever needed on a POST from the login page itself), lives loginCookieTTL
// and is deleted at login. No server state and no server key: any node
// checks any form.

const (
	loginCookie    = "__Host-latch_login"
	loginCookieTTL = 3600 // seconds: how long a login form may stay open
	csrfField      = "csrf_token"
)

// formOrigin reports whether a state-changing request came from a page of
// the issuer's origin. Referrer-Policy: same-origin on every page keeps
// browsers sending the real Origin on our own form posts (no-referrer
// would make them send "Origin: null", Fetch §3.1). When it did not, seen
// is what the browser said instead, for the log and the page: the Origin
// it sent, or its Sec-Fetch-Site.
func (s *Server) formOrigin(r *http.Request) (seen string, ok bool) {
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) == 1 && origins[0] == s.origin {
			return "", true
		}
		return strings.Join(origins, ", "), false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return "Sec-Fetch-Site: " + site, false
	}
	return "", true
}

// refuseForm logs at info level why the form what was refused: a user
// who sees "did not come from this site" needs the operator to be able to
// tell an old page from a page opened under another name of the server
// (http://localhost:8080 for an issuer of http://127.0.0.1:8080).
func (s *Server) refuseForm(ctx context.Context, what, reason, seen string) {
	if seen == "" {
		s.log.InfoContext(ctx, "form refused: "+reason, "form", what)
		return
	}
	msg := "form refused: it was posted from " + seen + ", not from the issuer's origin " + s.origin
	if strings.HasPrefix(seen, "http") {
		msg += ": open " + s.cfg.Issuer + ", not another name or port of this server"
	}
	s.log.InfoContext(ctx, msg, "form", what, "origin_seen", seen, "origin_expected", s.origin)
}

// Why a form is refused, as logged.
const (
	refusedCookie = "the browser sent no login cookie: the form is older than an hour, or the browser dropped the cookie"
	refusedToken  = "csrf_token does not match: the form was rendered for another session or cookie"
)

// checkCSRF reports whether the POST r, made with the session sess, is a
// form this server rendered for sess: its csrf_token (read from the body
// only, never the URL) matches the session's token, and it comes from the
// issuer's origin. It parses the form if the caller has not, and logs why
// it refuses.
func (s *Server) checkCSRF(r *http.Request, sess *latch.Session) bool {
	if sess == nil {
		return false
	}
	if seen, ok := s.formOrigin(r); !ok {
		s.refuseForm(r.Context(), r.URL.Path, "", seen)
		return false
	}
	raw := sessionCookieValue(r)
	if raw == "" || subtle.ConstantTimeCompare(loginsession.HashID(raw), sess.IDHash) != 1 {
		return false
	}
	if r.PostForm == nil {
		if err := r.ParseForm(); err != nil {
			return false
		}
	}
	if !loginsession.CSRFMatches(r.PostForm.Get(csrfField), loginsession.CSRFToken(raw)) {
		s.refuseForm(r.Context(), r.URL.Path, refusedToken, "")
		return false
	}
	return true
}

// sessionCSRF returns the token for the forms of a page rendered for the
// request's session; "" when the request has no session cookie.
func sessionCSRF(r *http.Request) string {
	raw := sessionCookieValue(r)
	if raw == "" {
		return ""
	}
	return loginsession.CSRFToken(raw)
}

// loginCSRF returns the login form's token, setting a fresh
// __Host-latch_login cookie when the request has none (or a malformed
// one), and refreshing its lifetime otherwise so that several tabs share
// one.
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request) (string, error) {
	raw := ""
	if c, err := r.Cookie(loginCookie); err == nil && loginsession.ValidRawID(c.Value) {
		raw = c.Value
	} else if raw, err = loginsession.NewRandomID(s.rand); err != nil {
		return "", err
	}
	setCookie(w, loginCookie, raw, http.SameSiteStrictMode, loginCookieTTL)
	return loginsession.LoginCSRFToken(raw), nil
}

// checkLoginCSRF is checkCSRF for the login form. When the form came
// from another origin, seen is that origin (or what Sec-Fetch-Site said).
func (s *Server) checkLoginCSRF(r *http.Request) (seen string, ok bool) {
	if seen, ok := s.formOrigin(r); !ok {
		s.refuseForm(r.Context(), "login", "", seen)
		return seen, false
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !loginsession.ValidRawID(c.Value) {
		s.refuseForm(r.Context(), "login", refusedCookie, "")
		return "", false
	}
	if !loginsession.CSRFMatches(r.PostForm.Get(csrfField), loginsession.LoginCSRFToken(c.Value)) {
		s.refuseForm(r.Context(), "login", refusedToken, "")
		return "", false
	}
	return "", true
}

// openedElsewhere reports whether a form refused for coming from the
// origin seen was on a page this server itself served under another name
// (the request's Host is seen's host): the browser then shows the answer
// under that name too, where a new form would fail again, so the page
// sends the user to the issuer instead. A page of another site posting
// here is not such a case: its answer is shown at this server's own name.
func openedElsewhere(r *http.Request, seen string) bool {
	if !strings.HasPrefix(seen, "http://") && !strings.HasPrefix(seen, "https://") {
		return false
	}
	u, err := url.Parse(seen)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// atIssuer redirects a GET of the page h under another loopback name than
// the issuer's (http://localhost:8080 for an issuer of
// http://127.0.0.1:8080) to the issuer, where its forms will work.
func (s *Server) atIssuer(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !s.loopbackAlias(r) {
			return h(w, r)
		}
		s.log.InfoContext(r.Context(), "page opened under another name than the issuer's: redirected to the issuer",
			"host", r.Host, "issuer", s.cfg.Issuer)
		redirect(w, s.endpoint(r.URL.RequestURI()))
		return nil
	}
}

// loopbackAlias reports whether r reached this server under another
// loopback name for the issuer's loopback host and port: localhost,
// 127.0.0.1 and [::1] are one machine but three origins to a browser, so
// a page opened under the wrong one can never post a form the Origin
// check accepts. Only then does a GET of a page redirect to the issuer:
// for any other host, the name may be a proxy's inner one, and a redirect
// could loop.
func (s *Server) loopbackAlias(r *http.Request) bool {
	iss, err := url.Parse(s.cfg.Issuer)
	if err != nil || !isLoopbackName(iss.Hostname()) {
		return false
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = strings.Trim(r.Host, "[]"), ""
	}
	issPort := iss.Port()
	if issPort == "" {
		issPort = map[string]string{"http": "80", "https": "443"}[iss.Scheme]
	}
	if port == "" {
		port = issPort // a browser omits the scheme's default port
	}
	return isLoopbackName(host) && port == issPort && !strings.EqualFold(host, iss.Hostname())
}

func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// originOf returns the serialised origin of an absolute URL as a browser
// sends it in Origin (RFC 6454 §6.1): lower-case scheme and host, the
// port only when not the scheme's default.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

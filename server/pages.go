package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/loginsession"
)

// The browser-facing pages of latch serve: GET,POST /login, POST /logout,
// the account page GET /account (and /) with its forms (account.go), the consent page the authorization endpoint
// renders, and the HTML error page. Server-rendered with html/template,
// no JavaScript; docs/login.md describes the flows and their defences.

//go:embed templates
var templateFS embed.FS

var (
	loginPage   = pageTemplate("login.html")
	accountPage = pageTemplate("account.html")
	consentPage = pageTemplate("consent.html")
	errorPage   = pageTemplate("error.html")

	stylesheet = mustRead("templates/latch.css")
	// cssVersion goes in the stylesheet's URL, so that a browser that
	// cached one release's CSS fetches the next one's.
	cssVersion = func() string { h := sha256.Sum256(stylesheet); return hex.EncodeToString(h[:6]) }()
)

func pageTemplate(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name))
}

func mustRead(name string) []byte {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// page is what the layout needs; each page's view embeds it.
type page struct {
	Title      string
	CSSVersion string
}

type loginView struct {
	page
	CSRF, ReturnTo, Username string
	// NameLabel labels the first field: what Config.LoginName accepts.
	NameLabel     string
	Error, Notice string
	SignedInAs    string
	// AppName is the registered name of the client whose authorization
	// request return_to carries: the user should know where signing in
	// leads.
	AppName string
	// OpenedAt is set when the page was opened under another name of this
	// server (an origin the Origin check refuses): the page then links to
	// IssuerLogin, at IssuerOrigin, instead of showing a form.
	OpenedAt, IssuerOrigin, IssuerLogin string
}

type hiddenField struct{ Name, Value string }

type consentView struct {
	page
	ConsentView
	ScopeList []scopeView
	Hidden    []hiddenField
	CSRF      string
}

type errorView struct {
	page
	Detail string
	// Calm shows Detail as plain text rather than an alert: for a page
	// that is missing, nothing went wrong that the user must act on.
	Calm bool
}

func (s *Server) loginRoutes(m *http.ServeMux) {
	m.Handle("GET /login", s.page("login", s.atIssuer(s.loginForm)))
	m.Handle("POST /login", s.page("login", s.login))
	m.Handle("POST /logout", s.page("logout", s.logout))
	s.accountRoutes(m)
	m.Handle("GET /static/latch.css", s.handle("static", s.static))
}

// page adapts a browser-facing handler: its errors are answered with the
// HTML error page rather than OAuth JSON.
func (s *Server) page(name string, h handlerFunc) http.Handler {
	return s.adapt(name, s.renderPageError, h)
}

// renderPageError is the renderer of the browser-facing pages. A server
// failure names the request ID, for the person to quote to the operator.
func (s *Server) renderPageError(w http.ResponseWriter, r *http.Request, status int, err error, id string) {
	if status >= 500 {
		s.renderError(w, r, status, "Something went wrong",
			"The server could not complete your request. Try again in a moment. If it keeps happening, quote request "+id+" to the site's operator.")
		return
	}
	s.renderError(w, r, status, http.StatusText(status), latch.ErrorMessage(err))
}

// setPageHeaders sets the security headers of every HTML page.
//
// The CSP allows nothing but the stylesheet: no scripts, no frames, no
// <base>. form-action 'self' is set only on pages whose forms never lead
// off this origin: Chromium applies form-action to every redirect that
// follows a form submission, and both the login form (via
// /oauth2/authorize) and the consent form end in a redirect to the
// client's redirect_uri, on any origin or a custom scheme.
//
// Referrer-Policy is same-origin, not no-referrer: under no-referrer
// browsers send "Origin: null" on our own form posts (Fetch §3.1), which
// would defeat the Origin check; same-origin still sends no Referer to any
// other site, the client applications included.
func setPageHeaders(w http.ResponseWriter, formActionSelf bool) {
	csp := "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'"
	if formActionSelf {
		csp += "; form-action 'self'"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// renderPage executes t into a buffer first, so that a template error is
// a clean 500 rather than half a page.
func (s *Server) renderPage(w http.ResponseWriter, status int, t *template.Template, data any, formActionSelf bool) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("server: rendering %s: %w", t.Name(), err)
	}
	setPageHeaders(w, formActionSelf)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func newPage(title string) page { return page{Title: title, CSSVersion: cssVersion} }

// renderError answers a browser-facing error with an HTML page: title as
// its heading, detail as the alert below it.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	err := s.renderPage(w, status, errorPage, errorView{page: newPage(title), Detail: detail}, true)
	if err != nil {
		s.log.ErrorContext(r.Context(), "render error page", "err", err)
		http.Error(w, title, status)
	}
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("ETag", `"`+cssVersion+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(stylesheet))
	return nil
}

// maxReturnTo bounds return_to: it carries an authorization request
// (PKCE challenge, state, nonce, scopes), which fits well within it.
const maxReturnTo = 4096

// safeReturnTo returns s if it is a path on this server, else "/": it must
// start with exactly one "/" (not "//" nor "/\", which browsers read as
// another host), hold only printable ASCII without backslash or space
// (browsers strip tabs and newlines from URLs, which would turn "/\t/x"
// into "//x"), and parse as a URL without scheme or host. So /login never
// redirects off this origin (no open redirect, OWASP Unvalidated Redirects
// and Forwards Cheat Sheet).
func safeReturnTo(s string) string {
	if isSafeReturnTo(s) {
		return s
	}
	return "/"
}

func isSafeReturnTo(s string) bool {
	if s == "" || len(s) > maxReturnTo || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.Opaque == "" && u.User == nil
}

// parsePageForm reads a form body of at most MaxBodyBytes, answering with
// the error page (413 or 400) when it cannot.
func (s *Server) parsePageForm(w http.ResponseWriter, r *http.Request, what string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	err := r.ParseForm()
	if err == nil {
		return true
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		s.renderError(w, r, http.StatusRequestEntityTooLarge, "Request too large", "The "+what+" form is larger than the server accepts.")
	} else {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "The "+what+" form could not be read.")
	}
	return false
}

func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// ConsentView is what the consent page shows: the client asking, the
// user, the scopes, and the authorization request's parameters, which the
// page posts back to /oauth2/authorize as hidden fields.
type ConsentView struct {
	ClientID, ClientName, Username string
	Scopes                         []string
	Params                         url.Values
}

// unregisteredRedirect is the error page's text for an authorization
// request whose redirect URI c has not registered.
func unregisteredRedirect(c *latch.Client) string {
	who := "The application with client ID " + c.ID
	if c.Name != "" {
		who = c.Name + " (client ID " + c.ID + ")"
	}
	return who + " asked to send you back to an address it has not registered here, so you were not sent there. Tell the application's developers."
}

// appName is how the pages name a client: its registered name, or its ID
// when it has none.
func appName(c *latch.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// renderConsent renders the consent page for sess: a POST form to
// /oauth2/authorize with every entry of v.Params as a hidden field (except
// consent and csrf_token, which the page sets itself, so that a request
// carrying consent=allow cannot turn the Deny button into Allow), the
// session's CSRF token, and Allow (consent=allow) and Deny (consent=deny)
// buttons. The POST is checked with checkCSRF.
func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, sess *latch.Session, v ConsentView) {
	raw := sessionCookieValue(r)
	if sess == nil || raw == "" || !bytes.Equal(loginsession.HashID(raw), sess.IDHash) {
		s.log.ErrorContext(r.Context(), "render consent: the request's cookie is not the session's")
		s.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The consent page could not be shown. Sign in again.")
		return
	}
	if v.ClientName == "" {
		v.ClientName = v.ClientID
	}
	keys := make([]string, 0, len(v.Params))
	for k := range v.Params {
		if k != "consent" && k != csrfField {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var hidden []hiddenField
	for _, k := range keys {
		for _, val := range v.Params[k] {
			hidden = append(hidden, hiddenField{k, val})
		}
	}
	view := consentView{page: newPage("Allow " + v.ClientName + "?"), ConsentView: v, Hidden: hidden,
		ScopeList: describeScopes(v.Scopes), CSRF: loginsession.CSRFToken(raw)}
	if err := s.renderPage(w, http.StatusOK, consentPage, view, false); err != nil {
		s.log.ErrorContext(r.Context(), "render consent", "err", err)
		s.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The consent page could not be shown.")
	}
}

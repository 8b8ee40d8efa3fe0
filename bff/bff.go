package bff

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
)

// BFF is the Backend-for-Frontend: an http.Handler for the whole origin of
// a single-page app. It is safe for concurrent use.
type BFF struct {
	cfg         Config
	iss         *issuer
	seal        *sealer
	origin      string // scheme://host[:port] of RedirectURL
	loginCookie string
	proxy       *httputil.ReverseProxy
	mux         *http.ServeMux

	flightsMu sync.Mutex
	flights   map[[32]byte]*flight

	opened openedSessions

	// dpop, with Config.DPoP, binds the session's tokens to the BFF's key.
	dpop *dpopClient
}

// New validates cfg, discovers the issuer's endpoints and keys, and
// returns the BFF. It fails when the issuer cannot be reached, so a
// misconfiguration shows at start-up. Run its Run in the background.
func New(ctx context.Context, cfg Config) (*BFF, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	iss, err := discover(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DPoP && !slices.Contains(iss.md.DPoPAlgorithms, string(latch.ES256)) {
		return nil, fmt.Errorf("bff: DPoP is on but %s does not accept DPoP proofs signed with ES256 (its dpop_signing_alg_values_supported is %v); run without --dpop or upgrade the server", cfg.Issuer, iss.md.DPoPAlgorithms)
	}
	return build(ctx, cfg, iss)
}

// build assembles a BFF from a validated cfg and a discovered issuer,
// reading (or, on the first start, creating) its DPoP key in the Store.
func build(ctx context.Context, cfg Config, iss *issuer) (*BFF, error) {
	seal, err := newSealer(cfg.Key)
	if err != nil {
		return nil, err
	}
	var dc *dpopClient
	if cfg.DPoP {
		key, err := loadDPoPKey(ctx, cfg.Store, seal)
		if err != nil {
			return nil, err
		}
		p, err := dpop.NewProver(key)
		if err != nil {
			return nil, err
		}
		dc = &dpopClient{prover: p.WithClock(cfg.Now)}
	}
	ru, _ := url.Parse(cfg.RedirectURL)
	b := &BFF{
		cfg:         cfg,
		iss:         iss,
		seal:        seal,
		origin:      ru.Scheme + "://" + ru.Host,
		loginCookie: cfg.CookieName + "_login",
		flights:     map[[32]byte]*flight{},
		dpop:        dc,
	}
	iss.cfg = &b.cfg
	iss.dpop = dc
	b.proxy = b.newProxy()
	m := http.NewServeMux()
	m.Handle("/bff/login", b.handle(only(http.MethodGet, b.login)))
	m.Handle("/bff/callback", b.handle(only(http.MethodGet, b.callback)))
	m.Handle("/bff/logout", b.handle(only(http.MethodPost, b.logout)))
	m.Handle("/bff/user", b.handle(only(http.MethodGet, b.user)))
	m.Handle("/bff/", b.handle(func(http.ResponseWriter, *http.Request) error {
		return &httpError{status: http.StatusNotFound, code: "not_found", desc: "no such BFF endpoint"}
	}))
	m.Handle(cfg.APIPrefix+"/", b.handle(b.api))
	if cfg.SPA != nil {
		m.Handle("/", spaHeaders(cfg.SPA))
	}
	b.mux = m
	return b, nil
}

// Handler returns the BFF's HTTP handler: /bff/*, the API prefix and, with
// Config.SPA, everything else. Served over https (RedirectURL's scheme),
// every answer carries Strict-Transport-Security (RFC 6797): the app's
// session cookie must never be offered to a plain-http address.
func (b *BFF) Handler() http.Handler {
	if !strings.HasPrefix(b.cfg.RedirectURL, "https://") {
		return b.mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", HSTSHeader)
		b.mux.ServeHTTP(w, r)
	})
}

// HSTSHeader is the BFF's Strict-Transport-Security value: one year
// (OWASP's HTTP Strict Transport Security Cheat Sheet). No
// includeSubDomains: the app's subdomains are not the BFF's to commit.
const HSTSHeader = "max-age=31536000"

// Run deletes expired sessions every PurgeInterval
// until ctx ends.
func (b *BFF) Run(ctx context.Context) {
	t := time.NewTicker(b.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := b.cfg.Store.Purge(ctx, b.cfg.Now()); err != nil && ctx.Err() == nil {
				b.cfg.Logger.Error("bff: purge expired sessions", "err", err)
			} else if n > 0 {
				b.cfg.Logger.Debug("bff: purged expired records", "records", n)
			}
		}
	}
}

// only lets method through (and HEAD with GET) and answers 405 to the
// others: logout is POST only, so that no link or image can log a user
// out, and the CSRF check applies to it.
func only(method string, fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
			return fn(w, r)
		}
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		w.Header().Set("Allow", allow)
		return &httpError{status: http.StatusMethodNotAllowed, code: CodeInvalidRequest, desc: "method not allowed; use " + method}
	}
}

// spaHeaders adds the headers every page of the app should carry: no
// framing by other sites (clickjacking), no MIME sniffing.
func spaHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// httpError is a handler's refusal: its status and a JSON body
// {"error": code, "error_description": desc}. code and desc are this
// package's words, never request input. cause, when set, is logged.
type httpError struct {
	status int
	code   string
	desc   string
	// clearSession clears the session cookie: the session it named is
	// gone.
	clearSession bool
	cause        error
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.desc + ": " + e.cause.Error()
	}
	return e.code + ": " + e.desc
}

// The error codes of the BFF's JSON answers (docs/bff.md lists them).
const (
	// CodeLoginRequired (401): no session, or it ended (idle or absolute
	// timeout, logout, an unreadable record). Send the user to /bff/login.
	CodeLoginRequired = "login_required"
	// CodeSessionRevoked (401): the authorization server refused to
	// refresh the session's tokens (its refresh family was revoked, e.g.
	// "log out everywhere", or expired). The session is deleted; send the
	// user to /bff/login.
	CodeSessionRevoked = "session_revoked"
	// CodeCSRF (403): a state-changing request without the X-Latch-CSRF
	// header or from another origin. Nothing was done.
	CodeCSRF = "csrf_check_failed"
	// CodeUnavailable (503): the authorization server or the revocation
	// feed cannot be reached; retry later. The session is kept.
	CodeUnavailable = "temporarily_unavailable"
	// CodeLoginFailed (400): the login could not be completed (expired,
	// replayed or foreign state, refused code, invalid ID token).
	CodeLoginFailed = "login_failed"
	// CodeInvalidRequest (400): a malformed request (e.g. a return_to that
	// is not a local path).
	CodeInvalidRequest = "invalid_request"
)

var (
	errLoginRequired = &httpError{status: http.StatusUnauthorized, code: CodeLoginRequired, desc: "no session; log in at /bff/login", clearSession: true}
	errRevoked       = &httpError{status: http.StatusUnauthorized, code: CodeSessionRevoked, desc: "the session was revoked at the authorization server; log in again at /bff/login", clearSession: true}
)

func unavailable(desc string, cause error) *httpError {
	return &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, desc: desc, cause: cause}
}

// handle adapts a handler that returns an error, so every error path is
// answered and logged the same way.
func (b *BFF) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				return // the browser went away
			}
			b.cfg.Logger.Error("bff: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{status: http.StatusInternalServerError, code: "server_error", desc: "the BFF failed; see its log"}
		} else if he.status >= 500 {
			b.cfg.Logger.Warn("bff: "+he.desc, "path", r.URL.Path, "err", he.cause)
		} else if he.cause != nil {
			b.cfg.Logger.Info("bff: refused", "path", r.URL.Path, "code", he.code, "err", he.cause)
		}
		if he.clearSession {
			if _, err := r.Cookie(b.cfg.CookieName); err == nil {
				b.clearCookie(w, b.cfg.CookieName)
			}
		}
		writeError(w, he)
	})
}

func writeError(w http.ResponseWriter, he *httpError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if he.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(he.status)
	json.NewEncoder(w).Encode(map[string]string{"error": he.code, "error_description": he.desc})
}

func writeJSON(w http.ResponseWriter, v any) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

// random returns n bytes of Config.Rand, base64url without padding.
func (b *BFF) random(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(b.cfg.Rand, buf); err != nil {
		return "", fmt.Errorf("bff: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// cookieValueLen is the length of every cookie value the BFF sets: 256
// bits, base64url.
const cookieValueLen = 43

// cookieKey returns the store key of a cookie value, SHA-256, or false for
// a value the BFF cannot have set.
func cookieKey(v string) ([32]byte, bool) {
	if len(v) != cookieValueLen {
		return [32]byte{}, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(v); err != nil {
		return [32]byte{}, false
	}
	return sha256.Sum256([]byte(v)), true
}

// setCookie sets a __Host- cookie: Secure, HttpOnly, Path=/, no Domain.
// The session cookie is SameSite=Strict: no cross-site request, not even a
// top-level navigation, carries it, which is the first CSRF defence. The
// pre-login cookie is SameSite=Lax: it must come back on the top-level
// navigation from the authorization server (another site) to
// /bff/callback.
func (b *BFF) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: max(int(maxAge/time.Second), 1),
		Secure: true, HttpOnly: true, SameSite: sameSite,
	})
}

func (b *BFF) clearCookie(w http.ResponseWriter, name string) {
	sameSite := http.SameSiteStrictMode
	if strings.HasPrefix(name, b.loginCookie) {
		sameSite = http.SameSiteLaxMode
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: sameSite})
}

// session is a logged-in browser's record, sealed in the Store. Times are
// Unix seconds.
type session struct {
	Subject string         `json:"sub"`
	User    map[string]any `json:"user"` // the non-secret claims /bff/user answers
	// The tokens: never sent to the browser.
	AccessToken  string `json:"at"`
	AccessExp    int64  `json:"at_exp"`
	AccessJTI    string `json:"at_jti,omitempty"` // for the revocation feed's denylist
	RefreshToken string `json:"rt,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	CreatedAt    int64  `json:"created_at"`
	ExpiresAt    int64  `json:"expires_at"` // absolute timeout
	Refreshes    int64  `json:"refreshes"`
	// JKT is the thumbprint of the key the access token is bound to
	// (token_type DPoP), "" for a Bearer token.
	JKT string `json:"jkt,omitempty"`
}

// liveSession is a session read for one request.
type liveSession struct {
	key [32]byte
	s   session
}

// touchEvery bounds how often a session's idle expiry is moved, so that a
// busy SPA does not write to the store on every request (a quarter of
// SessionIdle when that is shorter).
const touchEvery = time.Minute

// loadSession returns the session of the request's cookie, moving its idle
// expiry, or errLoginRequired.
func (b *BFF) loadSession(r *http.Request) (*liveSession, error) {
	c, err := r.Cookie(b.cfg.CookieName)
	if err != nil {
		return nil, errLoginRequired
	}
	key, ok := cookieKey(c.Value)
	if !ok {
		return nil, errLoginRequired
	}
	ctx := r.Context()
	now := b.cfg.Now()
	s, storeExp, err := b.readSession(ctx, key, now)
	if err != nil {
		return nil, err
	}
	// Idle timeout: the store's expiry moves with activity, but never past
	// the absolute one.
	if storeExp.Sub(now) < b.cfg.SessionIdle-min(touchEvery, b.cfg.SessionIdle/4) {
		exp := min(now.Add(b.cfg.SessionIdle).Unix(), s.ExpiresAt)
		if err := b.cfg.Store.TouchSession(ctx, key[:], time.Unix(exp, 0), now); err != nil {
			if errors.Is(err, latch.ErrNotFound) {
				return nil, errLoginRequired
			}
			return nil, unavailable("the session store cannot be reached", err)
		}
	}
	return &liveSession{key: key, s: *s}, nil
}

// readSession reads and opens the session stored under key.
func (b *BFF) readSession(ctx context.Context, key [32]byte, now time.Time) (*session, time.Time, error) {
	sealed, storeExp, err := b.cfg.Store.Session(ctx, key[:], now)
	if errors.Is(err, latch.ErrNotFound) {
		b.opened.drop(key)
		return nil, time.Time{}, errLoginRequired
	}
	if err != nil {
		return nil, time.Time{}, unavailable("the session store cannot be reached", err)
	}
	s, ok := b.opened.get(key, sealed)
	if !ok {
		var plain []byte
		plain, err = b.seal.open(kindSession, key[:], sealed)
		if err == nil {
			err = json.Unmarshal(plain, &s)
		}
		if err == nil {
			b.opened.put(key, sealed, s)
		}
	}
	if err != nil {
		// Sealed under another key, or altered: unusable either way.
		b.cfg.Logger.Warn("bff: dropping a session that cannot be opened", "err", err)
		b.cfg.Store.DeleteSession(ctx, key[:])
		return nil, time.Time{}, errLoginRequired
	}
	if now.Unix() >= s.ExpiresAt {
		b.cfg.Store.DeleteSession(ctx, key[:])
		return nil, time.Time{}, errLoginRequired
	}
	return &s, storeExp, nil
}

func (b *BFF) sealSession(key [32]byte, s *session) ([]byte, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return b.seal.seal(kindSession, key[:], plain)
}

// user answers GET /bff/user with the user's non-secret claims.
func (b *BFF) user(w http.ResponseWriter, r *http.Request) error {
	ls, err := b.loadSession(r)
	if err != nil {
		return err
	}
	out := make(map[string]any, len(ls.s.User)+1)
	for k, v := range ls.s.User {
		out[k] = v
	}
	out["sub"] = ls.s.Subject
	return writeJSON(w, out)
}

// userClaims are the ID token claims /bff/user may show: who the user is,
// never a credential.
var userClaims = []string{
	"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
	"email", "email_verified", "picture", "locale", "zoneinfo", "roles", "groups", "auth_time",
}

// isSafeMethod reports whether m cannot change state (RFC 9110 §9.2.1);
// the SPA must not use a safe method for a state change, since those are
// not CSRF-checked.
func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a state-changing request that a page of another origin
// could have sent (OWASP CSRF Prevention Cheat Sheet, "Employing Custom
// Request Headers for AJAX/API" and "Verifying Origin With Standard
// Headers"):
//
//   - X-Latch-CSRF: 1 is required. A cross-origin page can add a custom
//     header only through CORS, whose preflight the BFF never approves;
//     forms and simple requests cannot send one at all.
//   - Sec-Fetch-Site, which browsers set and scripts cannot, must be
//     same-origin when present.
//   - Origin, when present, must be the BFF's own origin; a request with
//     neither Sec-Fetch-Site nor Origin is refused, since it cannot be
//     told apart from a forged one.
//
// The session cookie's SameSite=Strict already keeps cross-site requests
// anonymous; these checks also cover same-site, cross-origin pages (a
// sibling subdomain).
func (b *BFF) checkCSRF(r *http.Request) error {
	refuse := func(desc string) error {
		return &httpError{status: http.StatusForbidden, code: CodeCSRF, desc: desc}
	}
	if v := r.Header.Values(CSRFHeader); len(v) != 1 || v[0] != "1" {
		return refuse("state-changing requests must carry the header " + CSRFHeader + ": 1")
	}
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return refuse("cross-origin request refused (Sec-Fetch-Site is not same-origin)")
	}
	origin := r.Header.Values("Origin")
	switch {
	case len(origin) > 1:
		return refuse("more than one Origin header")
	case len(origin) == 1 && origin[0] != b.origin:
		return refuse("cross-origin request refused (Origin is not this application's origin)")
	case len(origin) == 0 && site == "":
		return refuse("state-changing requests must carry Origin or Sec-Fetch-Site")
	}
	return nil
}

// validReturnTo reports whether p is a local path the BFF may redirect to
// after login: it starts with one "/", and no browser could read it as
// another host ("//evil", "/\evil", a scheme, control characters).
func validReturnTo(p string) bool {
	if p == "" || len(p) > MaxReturnTo || p[0] != '/' {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(u.Path, "//")
}

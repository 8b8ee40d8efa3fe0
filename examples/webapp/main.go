// Command webapp is a server-rendered web app that signs its users in with
// latch and then keeps them signed in with a session cookie of its own: the
// classic session-cookie mechanism, done right. No token ever reaches the
// browser.
//
//   - Login: the authorization code flow with PKCE (RFC 9700 §2.1.1) and a
//     one-time state tied to the browser by a short-lived cookie, as a
//     confidential client (the secret stays on the server).
//   - Session: a new random 256-bit ID at every login (no session fixation),
//     kept server-side by its SHA-256; the cookie is __Host-, Secure,
//     HttpOnly, SameSite=Lax, Path=/ (OWASP Session Management Cheat
//     Sheet); idle and absolute timeouts.
//   - Forms: logout is a POST with a synchronizer CSRF token and an Origin
//     check (OWASP CSRF Prevention Cheat Sheet); pages send no-store,
//     frame-ancestors 'none' and no-referrer (the code never leaks in a
//     Referer).
//
// Register it and run it (with `latch serve --dev` on 127.0.0.1:8080):
//
//	latch client create --id webapp --first-party --grant authorization_code \
//	    --redirect-uri http://127.0.0.1:8090/callback --scope "openid profile" --audience api
//	LATCH_CLIENT_SECRET=... go run ./examples/webapp --issuer http://127.0.0.1:8080 --insecure-allow-http
//
// Browsers treat http://127.0.0.1 as a secure context, so the __Host- cookie
// works there; anywhere else serve the app over https.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Getenv, log); err != nil {
		log.Error("webapp", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "latch issuer URL")
	clientID := fs.String("client-id", "webapp", "this app's confidential client at latch (secret in LATCH_CLIENT_SECRET)")
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on; port 0 picks a free port (logged)")
	insecure := fs.Bool("insecure-allow-http", false, "allow an http issuer (local development only)")
	idle := fs.Duration("session-idle-timeout", 30*time.Minute, "a session ends after this long without a request")
	maxAge := fs.Duration("session-max-age", 8*time.Hour, "a session ends this long after login, however active")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := getenv("LATCH_CLIENT_SECRET")
	if secret == "" {
		return errors.New("set LATCH_CLIENT_SECRET to the secret latch client create printed")
	}
	if strings.HasPrefix(*issuer, "http://") && !*insecure {
		return errors.New("--issuer is http: pass --insecure-allow-http for local development only")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	md, err := discover(ctx, *issuer)
	if err != nil {
		return err
	}
	app := &app{md: md, clientID: *clientID, secret: secret, base: base, idle: *idle, maxAge: *maxAge,
		sessions: map[[32]byte]*session{}, logins: map[[32]byte]*pending{}, now: time.Now, log: log}
	hs := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	log.Info("webapp listening", "addr", ln.Addr().String(), "redirect_uri", app.redirectURI())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// metadata is what the app uses of latch's RFC 8414 metadata.
type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
}

func discover(ctx context.Context, issuer string) (*metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(issuer, "/")+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return nil, err
	}
	var md metadata
	if err := doJSON(req, &md); err != nil {
		return nil, fmt.Errorf("issuer metadata: %w", err)
	}
	// RFC 8414 §3.3: the metadata is the issuer's only if it names it.
	if md.Issuer != strings.TrimRight(issuer, "/") {
		return nil, fmt.Errorf("issuer metadata names issuer %q, not %q", md.Issuer, issuer)
	}
	return &md, nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func doJSON(req *http.Request, v any) error {
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

const (
	// The cookie names carry __Host-: the browser takes them only from
	// this origin, Secure, with Path=/ and no Domain, so a sibling
	// subdomain cannot plant one (RFC 6265bis §4.1.3.2).
	sessionCookie = "__Host-webapp_session"
	loginCookie   = "__Host-webapp_login"
	loginTTL      = 10 * time.Minute
)

type session struct {
	user, name string
	csrf       string
	created    time.Time
	lastSeen   time.Time
}

// pending is a login under way: what the callback must match.
type pending struct {
	state, verifier string
	expires         time.Time
}

type app struct {
	md               *metadata
	clientID, secret string
	base             string
	idle, maxAge     time.Duration
	now              func() time.Time
	log              *slog.Logger

	mu       sync.Mutex
	sessions map[[32]byte]*session // by SHA-256 of the cookie value
	logins   map[[32]byte]*pending
}

func (a *app) redirectURI() string { return a.base + "/callback" }

func (a *app) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", a.home)
	m.HandleFunc("GET /login", a.login)
	m.HandleFunc("GET /callback", a.callback)
	m.HandleFunc("POST /logout", a.logout)
	return headers(m)
}

// headers sets what every page sends: not cached, not framed, no Referer
// (the callback URL carries the code), no script.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func key(v string) [32]byte { return sha256.Sum256([]byte(v)) }

func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// current returns the request's live session, touching it; nil if none.
func (a *app) current(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	k := key(c.Value)
	s := a.sessions[k]
	if s == nil {
		return nil
	}
	if now.Sub(s.lastSeen) > a.idle || now.Sub(s.created) > a.maxAge {
		delete(a.sessions, k)
		return nil
	}
	s.lastSeen = now
	return s
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webapp</title></head><body>
{{if .}}<p>Signed in as <strong>{{.Name}}</strong> (subject {{.User}}).</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button>Sign out</button></form>
{{else}}<p>You are not signed in.</p><p><a href="/login">Sign in with latch</a></p>{{end}}
</body></html>
`))

type view struct{ User, Name, CSRF string }

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := a.current(r)
	var v *view
	if s != nil {
		v = &view{User: s.user, Name: s.name, CSRF: s.csrf}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, v)
}

// login starts the authorization code flow with PKCE (RFC 7636, S256).
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	tx, state, verifier := random(), random(), random()
	a.mu.Lock()
	now := a.now()
	for k, p := range a.logins { // forget abandoned logins
		if now.After(p.expires) {
			delete(a.logins, k)
		}
	}
	a.logins[key(tx)] = &pending{state: state, verifier: verifier, expires: now.Add(loginTTL)}
	a.mu.Unlock()
	setCookie(w, loginCookie, tx, loginTTL)
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.redirectURI()},
		"scope": {"openid profile"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
	}
	http.Redirect(w, r, a.md.AuthorizationEndpoint+"?"+q.Encode(), http.StatusSeeOther)
}

// callback ends the flow: the state must be the one this browser's login
// cookie stands for (once), then the code is redeemed with the verifier
// and the client's secret, and a new session begins.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil {
		http.Error(w, "no login under way in this browser: start at /login", http.StatusBadRequest)
		return
	}
	clearCookie(w, loginCookie)
	a.mu.Lock()
	p := a.logins[key(c.Value)]
	delete(a.logins, key(c.Value))
	a.mu.Unlock()
	q := r.URL.Query()
	if p == nil || a.now().After(p.expires) || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.state)) != 1 {
		http.Error(w, "this sign-in response does not belong to a login this browser started: start again at /login", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		http.Error(w, "sign-in refused: "+e, http.StatusForbidden)
		return
	}
	user, name, err := a.redeem(r.Context(), q.Get("code"), p.verifier)
	if err != nil {
		a.log.Warn("code redemption", "err", err)
		http.Error(w, "sign-in failed; start again at /login", http.StatusBadGateway)
		return
	}
	// A new ID at every login: an ID planted before it is worth nothing.
	if old, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, key(old.Value))
		a.mu.Unlock()
	}
	id := random()
	now := a.now()
	a.mu.Lock()
	a.sessions[key(id)] = &session{user: user, name: name, csrf: random(), created: now, lastSeen: now}
	a.mu.Unlock()
	setCookie(w, sessionCookie, id, a.maxAge)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// redeem exchanges the code (RFC 6749 §4.1.3) and asks userinfo who the
// user is. The answers come straight from latch over the back channel.
func (a *app) redeem(ctx context.Context, code, verifier string) (user, name string, err error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.md.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(a.clientID), url.QueryEscape(a.secret))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := doJSON(req, &tr); err != nil {
		return "", "", err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, a.md.UserinfoEndpoint, nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	var ui struct {
		Sub               string `json:"sub"`
		PreferredUsername string `json:"preferred_username"`
	}
	if err := doJSON(req, &ui); err != nil {
		return "", "", err
	}
	if ui.Sub == "" {
		return "", "", errors.New("userinfo without sub")
	}
	return ui.Sub, ui.PreferredUsername, nil
}

// logout ends the session. It is a POST carrying the session's CSRF token,
// from this origin when the browser says where it comes from.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && o != a.base {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	s := a.current(r)
	if s == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf_token")), []byte(s.csrf)) != 1 {
		http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	c, _ := r.Cookie(sessionCookie)
	a.mu.Lock()
	delete(a.sessions, key(c.Value))
	a.mu.Unlock()
	clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// Command loadgen is latch's HTTP load generator. It drives one endpoint of a
// running `latch serve` (or its own no-op server, for a baseline) from -c
// concurrent keep-alive connections for -d, and prints one JSON line:
//
//	{"mode":"introspect","c":16,"duration_s":10.0,"requests":...,"errors":0,
//	 "rps":...,"p50_us":...,"p90_us":...,"p99_us":...,"max_us":...}
//
// Modes:
//
//	-mode token       POST grant_type=client_credentials to /oauth2/token
//	-mode introspect  POST token=... to /oauth2/introspect (-token or -token-file)
//	-mode refresh     POST grant_type=refresh_token to /oauth2/token: each
//	                  connection holds its own rotation chain (every answer's
//	                  refresh_token is its next request's), seeded before the
//	                  clock starts by one password grant per connection
//	                  (-username, -password-file, -scope)
//	-mode login       POST /login with -username and -password-file, as the
//	                  login form does (CSRF cookie and token from one GET
//	                  /login per connection, before the clock); an answer is
//	                  right when it is 303 to "/" with a session cookie
//	-mode noop        POST a body of the same size to -url (a -serve-noop server)
//	-serve-noop ADDR  run a no-op net/http server on ADDR (port 0: any free
//	                  port; the address is printed as {"noop_listening":ADDR})
//
// Every answer that is not 200 (login: 303) is an error, and so is a 200
// that does not say what it should (introspection: "active":true; token and
// refresh: an access_token in the -format asked for; refresh: a new
// refresh_token, and an id_token exactly when the scope has openid): an
// inactive token would otherwise be measured as a fast success. Errors are
// counted by kind (an OAuth error answer by its error code too, e.g.
// http_400_invalid_grant); a run with errors says so in its JSON
// ("ok":false) and exits with status 2. A refresh chain that the server
// refuses (invalid_grant: expired, revoked, or reuse detected) cannot go on:
// its connection stops and counts one chain_broken, which a correct server
// never causes. A refresh that timed out is retried with the same token,
// which the server's grace window (--refresh-grace) accepts.
//
// It is a test tool: it refuses a non-loopback URL unless -allow-remote,
// and every run is bounded by -d and -n.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	url          string
	mode         string
	c            int
	d            time.Duration
	warmup       time.Duration
	n            int64
	clientID     string
	clientSecret string
	token        string
	tokenFile    string
	scope        string
	format       string
	label        string
	timeout      time.Duration
	allowRemote  bool
	username     string
	passwordFile string
}

func main() {
	var o options
	var serveNoop string
	var serveFor time.Duration
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "server URL; without a path, the mode's endpoint (/oauth2/token, /oauth2/introspect) is appended")
	flag.StringVar(&o.mode, "mode", "introspect", "token, introspect, refresh, login or noop")
	flag.IntVar(&o.c, "c", 16, "concurrent connections (one goroutine each)")
	flag.DurationVar(&o.d, "d", 10*time.Second, "measured duration")
	flag.DurationVar(&o.warmup, "warmup", 0, "unmeasured warm-up before -d")
	flag.Int64Var(&o.n, "n", 5_000_000, "maximum number of requests, warm-up included (the run stops at -d or -n)")
	flag.StringVar(&o.clientID, "client-id", "", "client id (client_secret_basic)")
	flag.StringVar(&o.clientSecret, "client-secret", "", "client secret")
	flag.StringVar(&o.token, "token", "", "introspect: the token to introspect")
	flag.StringVar(&o.tokenFile, "token-file", "", "introspect: a file of tokens, one a line; connections take them round-robin")
	flag.StringVar(&o.scope, "scope", "read", "token: the scope to request; refresh: the scope of the password grants that seed the chains (with openid, every refresh must return an id_token)")
	flag.StringVar(&o.username, "username", "", "refresh, login: the user to sign in as")
	flag.StringVar(&o.passwordFile, "password-file", "", "refresh, login: a file whose first line is the user's password (not a flag: argv is visible to every user of the machine)")
	flag.StringVar(&o.format, "format", "", "token, refresh: the access-token format the server must issue (jwt or opaque), checked on every answer; introspect: a label; recorded in the output")
	flag.StringVar(&o.label, "label", "", "free text copied into the output")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback -url")
	flag.StringVar(&serveNoop, "serve-noop", "", "run a no-op HTTP server on this address instead of generating load")
	flag.DurationVar(&serveFor, "serve-for", 30*time.Minute, "-serve-noop: stop after this long even if not signalled")
	flag.Parse()

	if serveNoop != "" {
		if err := runNoop(serveNoop, serveFor); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if !res.OK {
		fmt.Fprintf(os.Stderr, "loadgen: %d of %d requests FAILED: %v; refresh chains broken: %d\n",
			res.Errors, res.Requests, res.ErrorKinds, res.ChainsBroken)
		os.Exit(2)
	}
}

// result is the JSON line a run prints.
type result struct {
	Mode       string           `json:"mode"`
	Format     string           `json:"format,omitempty"`
	Scope      string           `json:"scope,omitempty"`
	Label      string           `json:"label,omitempty"`
	URL        string           `json:"url"`
	C          int              `json:"c"`
	Duration   float64          `json:"duration_s"`
	Requests   int64            `json:"requests"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	OK         bool             `json:"ok"`
	StoppedByN bool             `json:"stopped_by_n,omitempty"`
	// ChainsBroken counts the refresh chains the server refused: their
	// connections stopped early.
	ChainsBroken int     `json:"chains_broken,omitempty"`
	RPS          float64 `json:"rps"`
	MeanUS       float64 `json:"mean_us"`
	P50US        float64 `json:"p50_us"`
	P90US        float64 `json:"p90_us"`
	P99US        float64 `json:"p99_us"`
	MaxUS        float64 `json:"max_us"`
}

// worker state: its latencies (ns) and error counts, merged at the end.
type worker struct {
	lat    []int64
	errs   map[string]int64
	nreq   int64
	broken bool // its refresh chain was refused
	finish time.Time
}

// conn is what one connection sends and expects: its headers, the body of
// its next request, and the check of each answer, which may move the
// connection's state on (a refresh chain). Each worker owns one.
type conn struct {
	header http.Header
	next   func() []byte
	// check returns "" when the answer is right, else an error kind;
	// stop says the connection cannot go on (a refused refresh chain).
	check func(status int, h http.Header, body []byte) (kind string, stop bool)
}

func run(o options) (*result, error) {
	if o.c < 1 || o.c > 4096 {
		return nil, fmt.Errorf("-c %d: want 1..4096", o.c)
	}
	if o.d <= 0 || o.d > time.Hour || o.warmup < 0 {
		return nil, fmt.Errorf("-d %v: want a positive duration up to 1h (and -warmup >= 0)", o.d)
	}
	if o.n < 1 {
		return nil, fmt.Errorf("-n %d: the run must be bounded by a positive request count", o.n)
	}
	u, err := url.Parse(o.url)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-url %q: want http(s)://host:port[/path]", o.url)
	}
	if !o.allowRemote && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("-url %q is not loopback; pass -allow-remote to load another host", o.url)
	}
	base := *u
	base.Path, base.RawQuery = "", ""
	if u.Path == "" || u.Path == "/" {
		switch o.mode {
		case "token", "refresh":
			u.Path = "/oauth2/token"
		case "introspect":
			u.Path = "/oauth2/introspect"
		case "login":
			u.Path = "/login"
		}
	}
	switch o.mode {
	case "token", "introspect", "refresh":
		if o.clientID == "" {
			return nil, errors.New("-client-id (and -client-secret) are required")
		}
	case "login", "noop":
	default:
		return nil, fmt.Errorf("-mode %q: want token, introspect, refresh, login or noop", o.mode)
	}
	var pw string
	if o.mode == "refresh" || o.mode == "login" {
		if o.username == "" || o.passwordFile == "" {
			return nil, fmt.Errorf("-mode %s needs -username and -password-file", o.mode)
		}
		if pw, err = readPassword(o.passwordFile); err != nil {
			return nil, err
		}
	}
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
	if o.clientID != "" && o.mode != "login" {
		// RFC 6749 §2.3.1: form-urlencode both before joining.
		cred := url.QueryEscape(o.clientID) + ":" + url.QueryEscape(o.clientSecret)
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.c,
		MaxIdleConnsPerHost: o.c,
		MaxConnsPerHost:     o.c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      8 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := u.String()

	// Every connection's state, before the clock starts: the refresh
	// chains are seeded and the login forms fetched here, unmeasured.
	conns := make([]*conn, o.c)
	switch o.mode {
	case "token", "introspect", "noop":
		bodies, check, err := staticBodies(o)
		if err != nil {
			return nil, err
		}
		for i := range conns {
			k := i
			conns[i] = &conn{header: header.Clone(), check: check200(check), next: func() []byte {
				b := bodies[k%len(bodies)]
				k += o.c
				return b
			}}
		}
	case "refresh":
		for i := range conns {
			if conns[i], err = refreshConn(client, target, header, o, pw); err != nil {
				return nil, fmt.Errorf("seeding refresh chain %d of %d: %w", i+1, o.c, err)
			}
		}
	case "login":
		for i := range conns {
			if conns[i], err = loginConn(client, base, target, o.username, pw); err != nil {
				return nil, fmt.Errorf("opening login form %d of %d: %w", i+1, o.c, err)
			}
		}
	}

	// One request before the clock starts: a misconfigured run fails here
	// with the server's answer instead of producing a table of errors. A
	// refresh run's seeding was its preflight.
	if o.mode != "refresh" {
		if kind, _, body := do(client, target, conns[0], new(bytes.Buffer)); kind != "" {
			return nil, fmt.Errorf("preflight %s %s: %s: %.300s", o.mode, target, kind, body)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.d)
	var started atomic.Int64
	var stoppedByN atomic.Bool
	workers := make([]*worker, o.c)
	perWorker := min(o.n/int64(o.c)+1, 1<<22)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{lat: make([]int64, 0, perWorker), errs: map[string]int64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i]
			buf := new(bytes.Buffer)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if started.Add(1) > o.n {
					stoppedByN.Store(true)
					break
				}
				kind, halt, _ := do(client, target, c, buf)
				t1 := time.Now()
				if halt {
					w.broken = true
				}
				if !t0.Before(measureFrom) {
					w.nreq++
					w.lat = append(w.lat, int64(t1.Sub(t0)))
					if kind != "" {
						w.errs[kind]++
					}
					w.finish = t1
				} else if kind != "" {
					// A failure in the warm-up still makes the run fail.
					w.errs["warmup_"+kind]++
				}
				if halt {
					break
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}

	res := &result{Mode: o.mode, Format: o.format, Label: o.label, URL: target, C: o.c,
		ErrorKinds: map[string]int64{}, StoppedByN: stoppedByN.Load()}
	if o.mode == "refresh" {
		res.Scope = o.scope
	}
	var all []int64
	last := measureFrom
	for _, w := range workers {
		res.Requests += w.nreq
		all = append(all, w.lat...)
		for k, v := range w.errs {
			res.ErrorKinds[k] += v
			res.Errors += v
		}
		if w.broken {
			res.ChainsBroken++
		}
		if w.finish.After(last) {
			last = w.finish
		}
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	res.OK = res.Errors == 0 && res.ChainsBroken == 0 && res.Requests > 0
	elapsed := last.Sub(measureFrom)
	if elapsed <= 0 || len(all) == 0 {
		return nil, fmt.Errorf("no request completed in the measured window (errors: %v)", res.ErrorKinds)
	}
	res.Duration = round(elapsed.Seconds(), 3)
	res.RPS = round(float64(res.Requests)/elapsed.Seconds(), 1)
	slices.Sort(all)
	var sum float64
	for _, v := range all {
		sum += float64(v)
	}
	us := func(ns float64) float64 { return round(ns/1e3, 1) }
	res.MeanUS = us(sum / float64(len(all)))
	res.P50US = us(float64(quantile(all, 0.50)))
	res.P90US = us(float64(quantile(all, 0.90)))
	res.P99US = us(float64(quantile(all, 0.99)))
	res.MaxUS = us(float64(all[len(all)-1]))
	return res, nil
}

// staticBodies pre-encodes the bodies of the stateless modes once (requests
// only wrap them in a reader) and returns the check of a 200 answer.
func staticBodies(o options) ([][]byte, func([]byte) string, error) {
	switch o.mode {
	case "token":
		return [][]byte{[]byte(url.Values{"grant_type": {"client_credentials"}, "scope": {o.scope}}.Encode())},
			tokenCheck(o.format), nil
	case "introspect":
		toks, err := tokens(o)
		if err != nil {
			return nil, nil, err
		}
		var bodies [][]byte
		for _, t := range toks {
			bodies = append(bodies, []byte(url.Values{"token": {t}}.Encode()))
		}
		active := []byte(`"active":true`)
		return bodies, func(b []byte) string {
			if !bytes.Contains(b, active) {
				return "inactive"
			}
			return ""
		}, nil
	}
	// noop: the same shape as an introspection request, so the HTTP work
	// is comparable: a form body of a token's size and Basic credentials.
	return [][]byte{[]byte("token=" + strings.Repeat("x", 55))}, func([]byte) string { return "" }, nil
}

// check200 wraps a body check: anything but 200 is an error first.
func check200(check func([]byte) string) func(int, http.Header, []byte) (string, bool) {
	return func(status int, _ http.Header, b []byte) (string, bool) {
		if status != http.StatusOK {
			return statusKind(status, b), false
		}
		return check(b), false
	}
}

// statusKind names a non-success answer: http_STATUS, with the OAuth
// error code when the body is an RFC 6749 §5.2 error (http_400_invalid_grant).
func statusKind(status int, b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" && len(e.Error) <= 40 {
		return fmt.Sprintf("http_%d_%s", status, e.Error)
	}
	return fmt.Sprintf("http_%d", status)
}

// do sends c's next request and returns "" or the kind of error, whether
// the connection must stop, and the body.
func do(hc *http.Client, target string, c *conn, buf *bytes.Buffer) (string, bool, []byte) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(c.next()))
	if err != nil {
		return "request", false, nil
	}
	req.Header = c.header
	resp, err := hc.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout", false, nil
		}
		return "transport", false, []byte(err.Error())
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "read", false, nil
	}
	kind, stop := c.check(resp.StatusCode, resp.Header, buf.Bytes())
	return kind, stop, buf.Bytes()
}

// tokenCheck checks a token response: an access_token, in format when set.
func tokenCheck(format string) func([]byte) string {
	key := []byte(`"access_token":"`)
	return func(b []byte) string {
		i := bytes.Index(b, key)
		if i < 0 {
			return "no_access_token"
		}
		tok := b[i+len(key):]
		if j := bytes.IndexByte(tok, '"'); j >= 0 {
			tok = tok[:j]
		}
		return formatCheck(format, string(tok))
	}
}

// formatCheck checks an access token's form: opaque (lt_at_) or a JWS.
func formatCheck(format, tok string) string {
	switch format {
	case "opaque":
		if !strings.HasPrefix(tok, "lt_at_") {
			return "wrong_format"
		}
	case "jwt":
		if strings.Count(tok, ".") != 2 {
			return "wrong_format"
		}
	}
	return ""
}

// grantAnswer is the part of a token response a refresh chain reads.
type grantAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// refreshConn seeds one refresh chain with a password grant (RFC 6749
// §4.3; the client must be first-party with the password and
// refresh_token grants) and returns the connection that rotates it.
func refreshConn(hc *http.Client, target string, header http.Header, o options, pw string) (*conn, error) {
	wantID := slices.Contains(strings.Fields(o.scope), "openid")
	check := func(b []byte) (*grantAnswer, string) {
		var g grantAnswer
		switch {
		case json.Unmarshal(b, &g) != nil:
			return nil, "bad_json"
		case g.AccessToken == "":
			return nil, "no_access_token"
		case !strings.HasPrefix(g.RefreshToken, "lt_rt_"):
			return nil, "no_refresh_token"
		case wantID && g.IDToken == "":
			return nil, "no_id_token"
		case !wantID && g.IDToken != "":
			return nil, "unexpected_id_token"
		}
		if kind := formatCheck(o.format, g.AccessToken); kind != "" {
			return nil, kind
		}
		return &g, ""
	}
	seed := &conn{header: header.Clone(), next: func() []byte {
		return []byte(url.Values{"grant_type": {"password"}, "username": {o.username}, "password": {pw}, "scope": {o.scope}}.Encode())
	}}
	var first *grantAnswer
	seed.check = func(status int, _ http.Header, b []byte) (string, bool) {
		if status != http.StatusOK {
			return statusKind(status, b), true
		}
		g, kind := check(b)
		first = g
		return kind, kind != ""
	}
	if kind, _, body := do(hc, target, seed, new(bytes.Buffer)); kind != "" {
		return nil, fmt.Errorf("password grant: %s: %.300s", kind, body)
	}
	rt := first.RefreshToken
	return &conn{
		header: header.Clone(),
		next: func() []byte {
			return []byte(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode())
		},
		check: func(status int, _ http.Header, b []byte) (string, bool) {
			if status != http.StatusOK {
				kind := statusKind(status, b)
				// invalid_grant: the token is spent, expired or its family
				// revoked; nothing this connection holds will work again.
				// Anything else (a 5xx, a 429) may pass: retry the same
				// token, which the grace window accepts.
				return kind, strings.HasSuffix(kind, "_invalid_grant")
			}
			g, kind := check(b)
			if kind != "" {
				return kind, false
			}
			rt = g.RefreshToken
			return "", false
		},
	}, nil
}

// The login form's cookie and field names (server/csrf.go, server/session.go).
const (
	loginCSRFCookie = "__Host-latch_login"
	sessionCookie   = "__Host-latch_session"
	csrfField       = "csrf_token"
)

var csrfRE = regexp.MustCompile(`name="` + csrfField + `" value="([^"]+)"`)

// loginConn opens the login form once, as a browser would, and returns the
// connection that posts it. The CSRF token is an HMAC of the
// __Host-latch_login cookie with no server state, so one form can be
// posted again and again; a successful login deletes the cookie in the
// browser, and a real browser would GET /login again, which is not
// measured here. The session cookie of each answer is not sent back: each
// login is a fresh browser's (no old session to delete).
func loginConn(hc *http.Client, base url.URL, target, username, pw string) (*conn, error) {
	form := base
	form.Path = "/login"
	resp, err := hc.Get(form.String())
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %.300s", form.String(), resp.StatusCode, b)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == loginCSRFCookie {
			cookie = c
		}
	}
	m := csrfRE.FindSubmatch(b)
	if cookie == nil || m == nil {
		return nil, fmt.Errorf("GET %s: no %s cookie or no %s field in the form", form.String(), loginCSRFCookie, csrfField)
	}
	body := []byte(url.Values{"username": {username}, "password": {pw}, csrfField: {html.UnescapeString(string(m[1]))}}.Encode())
	h := http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
		"Accept":       {"text/html"},
		// The browser's Origin for a form of this server (scheme://host:port).
		"Origin": {base.Scheme + "://" + base.Host},
		"Cookie": {(&http.Cookie{Name: cookie.Name, Value: cookie.Value}).String()},
	}
	prefix := sessionCookie + "="
	return &conn{
		header: h,
		next:   func() []byte { return body },
		check: func(status int, h http.Header, _ []byte) (string, bool) {
			if status != http.StatusSeeOther {
				return fmt.Sprintf("http_%d", status), false
			}
			if h.Get("Location") != "/" {
				return "wrong_redirect", false
			}
			for _, c := range h.Values("Set-Cookie") {
				if strings.HasPrefix(c, prefix) && len(c) > len(prefix) && c[len(prefix)] != ';' {
					return "", false
				}
			}
			return "no_session_cookie", false
		},
	}, nil
}

// readPassword returns the first line of path.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("-password-file %s: the first line is empty", path)
	}
	return line, nil
}

// tokens returns the tokens to introspect: -token, or -token-file's lines.
func tokens(o options) ([]string, error) {
	if (o.token == "") == (o.tokenFile == "") {
		return nil, errors.New("introspect needs exactly one of -token and -token-file")
	}
	if o.token != "" {
		return []string{o.token}, nil
	}
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return nil, err
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if t := strings.TrimSpace(line); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", o.tokenFile)
	}
	return out, nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []int64, q float64) int64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runNoop serves a handler that reads the body and answers a small JSON
// 200, with the headers latch sets, on the same net/http stack and timeouts
// as `latch serve`: the ceiling any handler can reach on this machine.
func runNoop(addr string, lifetime time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-serve-noop %q: %w", addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("-serve-noop %q: listen on a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte(`{"active":false}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hd := w.Header()
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Pragma", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	out, _ := json.Marshal(map[string]string{"noop_listening": ln.Addr().String()})
	fmt.Println(string(out))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, lifetime)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return hs.Shutdown(sctx)
}

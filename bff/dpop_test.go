package bff

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/dpop"
)

func withDPoP(c *Config) { c.DPoP = true }

// dpopUpstream stands for a resource server that accepts DPoP-bound
// tokens: every request is checked by a real dpop.Checker (with nonces
// when nonces is set) against the URL it reached, the token it carries and
// the thumbprint the token is bound to, and answered as package verify
// answers (RFC 9449 §7.1, §9).
type dpopUpstream struct {
	checker *dpop.Checker
	jkt     string

	mu       sync.Mutex
	accepted []string // the bodies of the requests accepted
	refused  []string // the errors of the refused ones
}

func newDPoPUpstream(t *testing.T, e *unitEnv, nonces dpop.NonceChecker) *dpopUpstream {
	t.Helper()
	c, err := dpop.New(dpop.Config{Nonces: nonces, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	u := &dpopUpstream{checker: c, jkt: e.b.jkt()}
	e.up.srv.Config.Handler = http.HandlerFunc(u.serve)
	return u
}

func (u *dpopUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	proofs := r.Header.Values(dpop.HeaderName)
	refuse := func(code string, err error) {
		u.mu.Lock()
		u.refused = append(u.refused, err.Error())
		u.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`"`)
		if code == "use_dpop_nonce" {
			w.Header().Set(dpop.NonceHeader, u.checker.Nonce())
		}
		w.WriteHeader(http.StatusUnauthorized)
	}
	if scheme != dpop.Scheme || len(proofs) != 1 {
		refuse("invalid_token", errors.New("not Authorization: DPoP with one proof: "+r.Header.Get("Authorization")))
		return
	}
	_, err := u.checker.Check(r.Context(), proofs[0], dpop.Request{
		Method: r.Method, URL: "http://" + r.Host + r.URL.EscapedPath(), AccessToken: tok, JKT: u.jkt,
	})
	if errors.Is(err, dpop.ErrNonce) {
		refuse("use_dpop_nonce", err)
		return
	}
	if err != nil {
		refuse("invalid_dpop_proof", err)
		return
	}
	u.mu.Lock()
	u.accepted = append(u.accepted, string(body))
	u.mu.Unlock()
	// A server may hand out the next nonce with any answer (RFC 9449 §8.2).
	next := u.checker.Nonce()
	if next == "" {
		next = "ignored-without-nonces"
	}
	w.Header().Set(dpop.NonceHeader, next)
	io.WriteString(w, `{"ok":true}`)
}

func (u *dpopUpstream) counts() (accepted, refused []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.accepted...), append([]string(nil), u.refused...)
}

// TestRFC9449_7_1_BFF_ProvesEveryAPIRequest: a session whose token is
// bound to the BFF's key is forwarded as Authorization: DPoP with a fresh
// proof (htm, htu, ath, a new jti) that a resource server's checker
// accepts, for every method; the browser's own DPoP header and the
// upstream's nonce never cross the BFF.
func TestRFC9449_7_1_BFF_ProvesEveryAPIRequest(t *testing.T) {
	e := newUnitEnv(t, withDPoP)
	up := newDPoPUpstream(t, e, nil)
	cookie := e.newSession(session{AccessToken: "the-access-token", JKT: e.b.jkt()})
	for _, tc := range []struct {
		method, body string
	}{{"GET", ""}, {"GET", ""}, {"POST", `{"n":1}`}, {"DELETE", ""}} {
		hdr := sameOrigin()
		hdr.Set(dpop.HeaderName, "forged-by-the-page")
		w := e.do(tc.method, "/api/items/1?x=y", cookie, hdr, strings.NewReader(tc.body))
		if w.Code != http.StatusOK {
			_, refused := up.counts()
			t.Fatalf("%s through the BFF: %d %s; upstream refused: %v", tc.method, w.Code, w.Body, refused)
		}
		if n := w.Header().Get(dpop.NonceHeader); n != "" {
			t.Fatalf("the upstream's DPoP-Nonce reached the browser: %q", n)
		}
	}
	accepted, refused := up.counts()
	if len(accepted) != 4 || len(refused) != 0 || accepted[2] != `{"n":1}` {
		t.Fatalf("upstream accepted %q, refused %v; want 4 accepted (the same proof twice would be a replay)", accepted, refused)
	}
}

// TestRFC9449_9_BFF_RetriesOnceWithTheUpstreamNonce: an upstream that
// requires nonces answers use_dpop_nonce with one; the BFF sends the
// request again with it (once), keeps it for the next requests, and when
// the nonce goes stale sends a POST again with its body intact.
func TestRFC9449_9_BFF_RetriesOnceWithTheUpstreamNonce(t *testing.T) {
	e := newUnitEnv(t, withDPoP)
	nonces, err := dpop.NewNonces(randBytes(t, 32), time.Minute, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	up := newDPoPUpstream(t, e, nonces)
	cookie := e.newSession(session{AccessToken: "the-access-token", JKT: e.b.jkt(), AccessExp: e.clock.Now().Add(time.Hour).Unix()})

	if w := e.do("GET", "/api/a", cookie, nil, nil); w.Code != http.StatusOK {
		t.Fatalf("first GET: %d %s", w.Code, w.Body)
	}
	if accepted, refused := up.counts(); len(accepted) != 1 || len(refused) != 1 {
		t.Fatalf("after the first GET: %d accepted, refused %v; want the nonce asked once, then accepted", len(accepted), refused)
	}
	if w := e.do("GET", "/api/b", cookie, nil, nil); w.Code != http.StatusOK {
		t.Fatalf("second GET: %d %s", w.Code, w.Body)
	}
	if accepted, refused := up.counts(); len(accepted) != 2 || len(refused) != 1 {
		t.Fatalf("after the second GET: %d accepted, %d refused; want the kept nonce used at once", len(accepted), len(refused))
	}
	// Two periods later the kept nonce is stale.
	e.clock.Advance(2 * time.Minute)
	if w := e.do("POST", "/api/c", cookie, sameOrigin(), strings.NewReader(`{"order":42}`)); w.Code != http.StatusOK {
		t.Fatalf("POST with a stale nonce: %d %s", w.Code, w.Body)
	}
	accepted, refused := up.counts()
	if len(accepted) != 3 || len(refused) != 2 || accepted[2] != `{"order":42}` {
		t.Fatalf("after the POST: accepted %q, %d refused; want the POST sent again with its body", accepted, len(refused))
	}
}

// TestRFC9449_9_BFF_DoesNotLoopOnNonces: an upstream that refuses every
// nonce gets the request twice, not more, and its answer reaches the app.
func TestRFC9449_9_BFF_DoesNotLoopOnNonces(t *testing.T) {
	e := newUnitEnv(t, withDPoP)
	var n int
	var mu sync.Mutex
	e.up.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		nonce := strings.Repeat("n", n)
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.Header().Set(dpop.NonceHeader, nonce)
		w.WriteHeader(http.StatusUnauthorized)
	})
	cookie := e.newSession(session{AccessToken: "tok", JKT: e.b.jkt()})
	if w := e.do("GET", "/api/a", cookie, nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("GET: %d %s, want the upstream's 401", w.Code, w.Body)
	}
	if n != 2 {
		t.Fatalf("the upstream got the request %d times, want 2", n)
	}
}

// TestDPoP_KeyIsSharedByNodesAndRestarts: the DPoP key is created once in
// the store and every BFF on that store (a restart, another node) signs
// with it; a BFF whose Key cannot open it refuses to start, saying why.
func TestDPoP_KeyIsSharedByNodesAndRestarts(t *testing.T) {
	e := newUnitEnv(t, withDPoP)
	jkt := e.b.jkt()
	if jkt == "" {
		t.Fatal("no DPoP key")
	}
	cfg := e.b.cfg
	again, err := build(context.Background(), cfg, &issuer{md: e.b.iss.md})
	if err != nil {
		t.Fatal(err)
	}
	if again.jkt() != jkt {
		t.Fatalf("a second BFF on the same store has key %s, want %s", again.jkt(), jkt)
	}
	cfg.Key = randBytes(t, KeySize)
	_, err = build(context.Background(), cfg, &issuer{md: e.b.iss.md})
	if err == nil || !strings.Contains(err.Error(), "sealed under another Key") {
		t.Fatalf("a BFF with another Key on the store: %v, want a refusal naming the Key", err)
	}
	off := e.b.cfg
	off.DPoP = false
	plain, err := build(context.Background(), off, &issuer{md: e.b.iss.md})
	if err != nil || plain.jkt() != "" {
		t.Fatalf("a BFF without DPoP: jkt %q, %v", plain.jkt(), err)
	}
}

// TestDPoP_TokenBoundToAnotherKeyIsNotForwarded: a session whose token is
// bound to a key the BFF does not hold is refreshed first; when that
// cannot be done the request is not forwarded with a token no proof can
// go with. An unbound (Bearer) token still in date is forwarded as Bearer.
func TestDPoP_TokenBoundToAnotherKeyIsNotForwarded(t *testing.T) {
	e := newUnitEnv(t, withDPoP)
	other := e.newSession(session{AccessToken: "tok", JKT: "another-key", RefreshToken: "rt"})
	w := e.do("GET", "/api/a", other, nil, nil)
	if w.Code != http.StatusServiceUnavailable || len(e.up.requests()) != 0 {
		t.Fatalf("token bound to another key: %d %s, upstream saw %d requests; want 503 and nothing forwarded", w.Code, w.Body, len(e.up.requests()))
	}
	bearer := e.newSession(session{AccessToken: "bearer-tok", RefreshToken: "rt"})
	w = e.do("GET", "/api/a", bearer, nil, nil)
	reqs := e.up.requests()
	if w.Code != http.StatusOK || len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer bearer-tok" || reqs[0].Header.Get(dpop.HeaderName) != "" {
		t.Fatalf("unbound token while the refresh fails: %d %s, want it forwarded as Bearer without a proof", w.Code, w.Body)
	}
}

// TestDPoP_KeyIsSealedAtRest: the store holds the DPoP key sealed: neither
// its private scalar nor its PKCS #8 encoding appears in the record.
func TestDPoP_KeyIsSealedAtRest(t *testing.T) {
	e := newUnitEnv(t, withDPoP)
	key, err := loadDPoPKey(context.Background(), e.store, e.b.seal)
	if err != nil {
		t.Fatal(err)
	}
	if jkt, _ := dpop.Thumbprint(key.Public()); jkt != e.b.jkt() {
		t.Fatalf("the stored key has thumbprint %s, the BFF signs with %s", jkt, e.b.jkt())
	}
	stored, err := e.store.CreateKey(context.Background(), dpopKeyName, []byte("not used: a key is stored"))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	d, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, d) || bytes.Contains(stored, der) {
		t.Fatal("the DPoP key is stored in the clear")
	}
}

// TestRFC9449_10_BFF_BindsTheCodeToItsKey: with DPoP the authorization
// request carries dpop_jkt, the thumbprint of the BFF's key; without, none.
func TestRFC9449_10_BFF_BindsTheCodeToItsKey(t *testing.T) {
	for _, on := range []bool{true, false} {
		e := newUnitEnv(t, func(c *Config) { c.DPoP = on })
		w := e.do("GET", "/bff/login", "", nil, nil)
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusFound || err != nil {
			t.Fatalf("GET /bff/login: %d %v", w.Code, err)
		}
		got, want := loc.Query()["dpop_jkt"], []string(nil)
		if on {
			want = []string{e.b.jkt()}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("DPoP %v: dpop_jkt %q, want %q", on, got, want)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/faulttest"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/verify"
)

// The fault suite: two real `latch serve` nodes on a private PostgreSQL
// and Redis (internal/faulttest), a bounded mixed load (client_credentials
// JWT and opaque, introspection, revocation, password logins and refresh
// rotation), a verify follower and latch gateway, and one fault at a
// time. After each fault it checks what an operator is promised (nothing
// acknowledged lost, no wrong answer, no 5xx but 503 + Retry-After +
// temporarily_unavailable, nothing hanging past its timeout) and logs the
// figures docs/operations.md's fault table records:
//
//	LATCH_TEST_FAULTS=1 go test ./cmd/latch -run TestFaults -v

// staleBound is how long after a revocation answered 200 another node may
// still report the token active: the token cache's poll of the revocation
// log (100 ms) when the Redis fan-out is down, with room for a loaded
// 2-core machine.
const staleBound = time.Second

// hangLimit is the longest a request may take: the server's RequestTimeout
// plus room for the answer. Longer is a hang.
const hangLimit = server.RequestTimeout + 3*time.Second

// faultRig is the system under test.
type faultRig struct {
	t      *testing.T
	pg     *faulttest.Postgres
	rd     *faulttest.Redis
	px     *faulttest.Proxy // between node 1 and PostgreSQL
	dir    string
	issuer string
	ports  [2]int
	nodes  [2]*latchProc
	dev    testClient // JWTs for dev-api; may introspect everything
	opq    testClient // opaque tokens for api
	fp     testClient // first party: password and refresh_token grants
	hc     *http.Client
	ver    *verify.Verifier
	led    *ledger
	gw     string           // latch gateway's URL of the example API, following node 0's feed
	ahead  [2]time.Duration // a node's clock offset (the clock fault)
}

func (r *faultRig) nodeFlags(i int, extra ...string) []string {
	db := r.pg.URL()
	if i == 1 {
		db = r.pg.URLAt(r.px.Port)
	}
	return append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(r.ports[i]), "--issuer", r.issuer,
		"--database-url", db, "--redis-url", r.rd.URL()}, extra...)
}

func (r *faultRig) start(i int, extra ...string) {
	r.nodes[i] = startLatch(r.t, r.dir, r.nodeFlags(i, extra...)...)
}

func startFaultRig(t *testing.T) *faultRig {
	faulttest.Require(t)
	r := &faultRig{t: t, pg: faulttest.StartPostgres(t), rd: faulttest.StartRedis(t), dir: t.TempDir(),
		hc: &http.Client{Timeout: hangLimit + 2*time.Second}, led: newLedger()}
	r.px = faulttest.StartProxy(t, "127.0.0.1:"+strconv.Itoa(r.pg.Port))
	r.ports = [2]int{faulttest.FreePort(t), faulttest.FreePort(t)}
	// Node 0 listens on the issuer's address, so verify and the gateway
	// discover it as a resource server would; node 1 is its peer behind
	// the same issuer.
	r.issuer = "http://127.0.0.1:" + strconv.Itoa(r.ports[0])
	r.start(0)
	r.dev = testClient{ID: "dev", Secret: r.nodes[0].DevSecret(t)}
	r.start(1)
	r.opq = createClient(t, r.dir, "--database-url", r.pg.URL(), "--format", "opaque", "--audience", "api", "--scope", "read")
	r.fp = createClient(t, r.dir, "--database-url", r.pg.URL(), "--first-party", "--grant", "password,refresh_token",
		"--format", "opaque", "--audience", "api", "--scope", "read")
	if _, errOut, code := runCLIStdin(t, faultPassword+"\n", "user", "create", "carol", "--password-stdin", "--database-url", r.pg.URL()); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	d, err := verify.FollowRevocations(context.Background(), verify.FeedConfig{
		Issuer: r.issuer, ClientID: r.dev.ID, ClientSecret: r.dev.Secret, InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatalf("FollowRevocations: %v", err)
	}
	t.Cleanup(d.Close)
	if r.ver, err = verify.New(context.Background(), verify.Config{
		Issuer: r.issuer, Audience: "dev-api", InsecureAllowHTTP: true, IsRevoked: d.IsRevoked,
	}); err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	// latch gateway in front of the example API, as a resource server's
	// phantom-token path: it must refuse what was revoked, like verify.
	gwc := createClient(t, r.dir, "--database-url", r.pg.URL(), "--name", "gateway", "--audience", "api",
		"--grant", "urn:ietf:params:oauth:grant-type:token-exchange")
	api := startProc(t, "listening", nil, buildExampleAPI(t),
		"--issuer", r.issuer, "--audience", "api", "--listen", "127.0.0.1:0", "--insecure-allow-http")
	gw := startProc(t, "latch gateway listening", []string{"LATCH_CLIENT_SECRET=" + gwc.Secret}, latchBin, "gateway",
		"--issuer", r.issuer, "--upstream", "http://"+api.Addr, "--listen", "127.0.0.1:0", "--client-id", gwc.ID,
		"--cache-ttl", "10m", "--audience", "api", "--insecure-allow-http", "--log-format", "json")
	r.gw = "http://" + gw.Addr + "/hello"
	return r
}

// faultPassword is the test user's password.
const faultPassword = "fault suite password 1"

// chain is one refresh-token family as its client sees it: the refresh
// token it holds (the last one answered 200). One refresh at a time.
type chain struct {
	mu   sync.Mutex
	rt   string
	prev string // the token rt replaced
	// unsure is set when a refresh got no clear answer (503, a cut
	// connection): the server may have rotated; the retry with rt is a
	// reuse, fine within the grace window, a family revocation after it.
	unsure    time.Time
	rotations int
	dead      bool // revoked by a reuse after an unsure answer: not a wrong answer
}

// ledger is what the load was told: tokens issued (200) and revocations
// acknowledged (200). A token whose revocation got anything else (503, a
// cut connection) may or may not be revoked: it is checked neither way.
type ledger struct {
	mu      sync.Mutex
	toks    []issued
	revoked map[string]time.Time // token -> when its revocation answered 200
	unsure  map[string]bool      // revocation sent, outcome unknown
	pending map[string]bool      // revocation in flight
	chains  []*chain
}

type issued struct {
	tok   string
	jwt   bool
	node  int
	phase string
	// validFrom is when every node's clock agrees the token is valid: its
	// issuer's clock may run ahead (the clock fault), and until then the
	// other nodes, rightly, call it not yet valid.
	validFrom time.Time
}

func newLedger() *ledger {
	return &ledger{revoked: map[string]time.Time{}, unsure: map[string]bool{}, pending: map[string]bool{}}
}

func (l *ledger) add(i issued) {
	l.mu.Lock()
	l.toks = append(l.toks, i)
	l.mu.Unlock()
}

func (l *ledger) pick() (issued, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.toks) == 0 {
		return issued{}, false
	}
	// Mostly recent tokens, as real traffic does.
	n := len(l.toks)
	return l.toks[n-1-mrand.IntN(min(n, 200))], true
}

// state says what an introspection started at `at` may answer for tok:
// must be active, must be inactive, or either (revocation in flight or of
// unknown outcome, or revoked too recently for every node to know).
func (l *ledger) state(it issued, at time.Time) (mustActive, mustInactive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[it.tok] || l.unsure[it.tok] {
		return false, false
	}
	if ack, ok := l.revoked[it.tok]; ok {
		return false, at.Sub(ack) > staleBound
	}
	return at.After(it.validFrom), false
}

// phaseStats are the figures of one fault.
type phaseStats struct {
	mu       sync.Mutex
	name     string
	requests int
	ok       int
	by503    map[string]int // endpoint -> 503s
	connErr  int            // node down (killed): refused or reset
	// notYetValid counts introspections that called a token from a node
	// whose clock runs ahead not active: failing closed, as they should.
	notYetValid int
	// endedByRetry counts refresh families ended because a refresh got
	// 503 (or no answer) yet rotated, and the client's retry came after
	// the grace window.
	endedByRetry int
	bad          []string // 5xx but 503, 503 without Retry-After or RFC body, hangs
	wrong        []string // wrong answers
	maxLat       time.Duration
	recovery     time.Duration // dependency back -> every node answers writes and reads
	readyDown    time.Duration // fault start -> a /readyz answered 503 (0: never)
	readyCode    map[int]int
}

func newPhase(name string) *phaseStats {
	return &phaseStats{name: name, by503: map[string]int{}, readyCode: map[int]int{}}
}

func (s *phaseStats) note(f func(s *phaseStats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// call sends one form POST, authenticated as c, to node i and classifies
// the answer; it returns the status (0 for no answer) and body.
func (r *faultRig) call(s *phaseStats, i int, endpoint string, c testClient, form url.Values) (int, []byte) {
	return r.callExpect(s, i, endpoint, c, form, false)
}

// callExpect is call; with ok4xx, a 4xx is the caller's to judge.
func (r *faultRig) callExpect(s *phaseStats, i int, endpoint string, c testClient, form url.Values, ok4xx bool) (int, []byte) {
	p := r.nodes[i]
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(r.ports[i])+endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	start := time.Now()
	resp, err := r.hc.Do(req)
	lat := time.Since(start)
	s.note(func(s *phaseStats) {
		s.requests++
		s.maxLat = max(s.maxLat, lat)
	})
	if lat > hangLimit {
		s.note(func(s *phaseStats) { s.bad = append(s.bad, fmt.Sprintf("%s on node %d took %v", endpoint, i, lat)) })
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.note(func(s *phaseStats) {
				s.bad = append(s.bad, fmt.Sprintf("%s on node %d: no answer in %v", endpoint, i, r.hc.Timeout))
			})
		} else {
			s.note(func(s *phaseStats) { s.connErr++ })
		}
		_ = p
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == 200:
		s.note(func(s *phaseStats) { s.ok++ })
	case resp.StatusCode == 503:
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if resp.Header.Get("Retry-After") == "" || e.Error != "temporarily_unavailable" {
			s.note(func(s *phaseStats) {
				s.bad = append(s.bad, fmt.Sprintf("%s 503 Retry-After %q body %s", endpoint, resp.Header.Get("Retry-After"), body))
			})
		}
		s.note(func(s *phaseStats) { s.by503[endpoint]++ })
	case resp.StatusCode >= 500:
		s.note(func(s *phaseStats) {
			s.bad = append(s.bad, fmt.Sprintf("%s on node %d: %d %s", endpoint, i, resp.StatusCode, body))
		})
	case !ok4xx:
		s.note(func(s *phaseStats) {
			s.wrong = append(s.wrong, fmt.Sprintf("%s on node %d: %d %s", endpoint, i, resp.StatusCode, body))
		})
	}
	return resp.StatusCode, body
}

// op runs one operation of the mix on a random node.
func (r *faultRig) op(s *phaseStats) {
	i := mrand.IntN(2)
	switch n := mrand.IntN(20); {
	case n < 5: // client_credentials, JWT
		r.issue(s, i, r.dev, true)
	case n < 10: // client_credentials, opaque
		r.issue(s, i, r.opq, false)
	case n < 12:
		r.refresh(s, i)
	case n == 12:
		r.login(s, i)
	case n < 18:
		it, ok := r.led.pick()
		if !ok {
			return
		}
		start := time.Now()
		code, body := r.call(s, i, "/oauth2/introspect", r.dev, url.Values{"token": {it.tok}})
		if code != 200 {
			return
		}
		var a struct {
			Active bool `json:"active"`
		}
		json.Unmarshal(body, &a)
		mustActive, mustInactive := r.led.state(it, start)
		if !a.Active && start.Before(it.validFrom) {
			s.note(func(s *phaseStats) { s.notYetValid++ })
		}
		if (mustActive && !a.Active) || (mustInactive && a.Active) {
			s.note(func(s *phaseStats) {
				s.wrong = append(s.wrong, fmt.Sprintf("introspect on node %d of a %s token: active=%v", i, map[bool]string{true: "live", false: "revoked"}[mustActive], a.Active))
			})
		}
	default:
		it, ok := r.led.pick()
		if !ok {
			return
		}
		r.led.mu.Lock()
		if _, done := r.led.revoked[it.tok]; done || r.led.pending[it.tok] {
			r.led.mu.Unlock()
			return
		}
		r.led.pending[it.tok] = true
		r.led.mu.Unlock()
		owner := r.opq
		if it.jwt {
			owner = r.dev
		}
		code, _ := r.call(s, i, "/oauth2/revoke", owner, url.Values{"token": {it.tok}})
		r.led.mu.Lock()
		delete(r.led.pending, it.tok)
		if code == 200 {
			r.led.revoked[it.tok] = time.Now()
			delete(r.led.unsure, it.tok)
		} else {
			r.led.unsure[it.tok] = true
		}
		r.led.mu.Unlock()
	}
}

// login runs the password grant (argon2id, the shared login throttle in
// Redis, a new refresh family), for at most 40 families.
func (r *faultRig) login(s *phaseStats, i int) {
	r.led.mu.Lock()
	n := len(r.led.chains)
	r.led.mu.Unlock()
	if n >= 40 {
		return
	}
	code, body := r.call(s, i, "/oauth2/token", r.fp, url.Values{"grant_type": {"password"}, "username": {"carol"},
		"password": {faultPassword}, "scope": {"read"}})
	var tr struct {
		RefreshToken string `json:"refresh_token"`
	}
	if code != 200 || json.Unmarshal(body, &tr) != nil || tr.RefreshToken == "" {
		return
	}
	r.led.mu.Lock()
	r.led.chains = append(r.led.chains, &chain{rt: tr.RefreshToken})
	r.led.mu.Unlock()
}

// refresh rotates a random family's refresh token on node i. The token
// the client holds was answered 200: refusing it is a lost rotation,
// unless an earlier refresh got no clear answer longer ago than the grace
// window (then the server may have rotated, and the retry is a reuse).
func (r *faultRig) refresh(s *phaseStats, i int) {
	r.led.mu.Lock()
	if len(r.led.chains) == 0 {
		r.led.mu.Unlock()
		return
	}
	c := r.led.chains[mrand.IntN(len(r.led.chains))]
	r.led.mu.Unlock()
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	r.refresh1(s, c, i)
}

// refresh1 refreshes c once on node i (c locked) and returns the status.
func (r *faultRig) refresh1(s *phaseStats, c *chain, i int) int {
	start := time.Now()
	code, body := r.callExpect(s, i, "/oauth2/token", r.fp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.rt}}, true)
	var tr struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	json.Unmarshal(body, &tr)
	switch {
	case code == 200 && tr.RefreshToken != "":
		c.prev, c.rt, c.unsure = c.rt, tr.RefreshToken, time.Time{}
		c.rotations++
	case code == 400 && tr.Error == "invalid_grant" && !c.unsure.IsZero() && time.Since(c.unsure) > faultRefreshGrace:
		// The unanswered refresh did rotate (its commit reached the
		// server), and this retry came after the grace window: a reuse,
		// which ends the family. The price of an ambiguous 503.
		c.dead = true
		s.note(func(s *phaseStats) { s.endedByRetry++ })
	case code == 0 || code == 503:
		if c.unsure.IsZero() {
			c.unsure = start // the server's rotation, if any, is no earlier
		}
	default:
		c.dead = true // reported once, not again on every later refresh
		s.note(func(s *phaseStats) {
			s.wrong = append(s.wrong, fmt.Sprintf("refresh on node %d of the token last answered 200 (rotation %d): %d %s", i, c.rotations, code, body))
		})
	}
	return code
}

// auditChains refreshes every family once after recovery: the refresh
// token each holds, answered 200, must still work.
func (r *faultRig) auditChains(s *phaseStats) {
	r.led.mu.Lock()
	chains := append([]*chain(nil), r.led.chains...)
	r.led.mu.Unlock()
	for k, c := range chains {
		c.mu.Lock()
		for range 3 { // an unsure chain may need its retry
			if c.dead || r.refresh1(s, c, k%2) != 503 {
				break
			}
		}
		c.mu.Unlock()
	}
}

// auditForks replays each family's previous refresh token: within the
// grace window it must get the very token the client holds (the same
// successor), after it a refusal that revokes the family, so that the
// token the client holds is refused too. Either way, never two live
// chains. It ends every family.
func (r *faultRig) auditForks(s *phaseStats) {
	r.led.mu.Lock()
	chains := append([]*chain(nil), r.led.chains...)
	r.led.mu.Unlock()
	forks, rotations := 0, 0
	for _, c := range chains {
		rotations += c.rotations
	}
	for k, c := range chains {
		if c.dead || c.prev == "" || !c.unsure.IsZero() {
			continue
		}
		code, body := r.callExpect(s, k%2, "/oauth2/token", r.fp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.prev}}, true)
		var tr struct {
			RefreshToken string `json:"refresh_token"`
		}
		json.Unmarshal(body, &tr)
		switch code {
		case 200:
			if tr.RefreshToken != c.rt {
				forks++
				s.wrong = append(s.wrong, "a replayed refresh token got a new successor: the family forked")
			}
		case 400:
			if c2, _ := r.callExpect(s, 1-k%2, "/oauth2/token", r.fp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.rt}}, true); c2 == 200 {
				forks++
				s.wrong = append(s.wrong, "after a reuse revoked the family, its newest refresh token still works: two live chains")
			}
		default:
			s.wrong = append(s.wrong, fmt.Sprintf("replay of a rotated refresh token: %d %s", code, body))
		}
	}
	r.t.Logf("refresh families: %d, rotations answered 200: %d, forks found: %d", len(chains), rotations, forks)
}

// faultRefreshGrace is latch serve's default --refresh-grace.
const faultRefreshGrace = 10 * time.Second

func (r *faultRig) issue(s *phaseStats, i int, c testClient, jwt bool) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if !jwt {
		form.Set("scope", "read") // what the example API behind the gateway asks for
	}
	code, body := r.call(s, i, "/oauth2/token", c, form)
	if code != 200 {
		return
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		s.note(func(s *phaseStats) { s.wrong = append(s.wrong, "token 200 without a token: "+string(body)) })
		return
	}
	r.led.add(issued{tok: tr.AccessToken, jwt: jwt, node: i, phase: s.name, validFrom: time.Now().Add(r.ahead[i])})
}

// load runs the mix with workers until stop is closed.
func (r *faultRig) load(s *phaseStats, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.op(s)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return &wg
}

// watchReady polls /readyz on both nodes until stop, recording when the
// first 503 came after start and every status seen.
func (r *faultRig) watchReady(s *phaseStats, start time.Time, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for i := range 2 {
				code := 0
				if resp, err := hc.Get("http://127.0.0.1:" + strconv.Itoa(r.ports[i]) + "/readyz"); err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				s.note(func(s *phaseStats) {
					s.readyCode[code]++
					if code == 503 && s.readyDown == 0 {
						s.readyDown = time.Since(start)
					}
				})
			}
		}
	}()
	return &wg
}

// recover waits until every node issues and introspects an opaque token
// again, and returns how long that took from back.
func (r *faultRig) recover(back time.Time) time.Duration {
	probe := newPhase("probe")
	for i := range 2 {
		for {
			code, body := r.call(probe, i, "/oauth2/token", r.opq, url.Values{"grant_type": {"client_credentials"}})
			if code == 200 {
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				json.Unmarshal(body, &tr)
				if c, b := r.call(probe, 1-i, "/oauth2/introspect", r.dev, url.Values{"token": {tr.AccessToken}}); c == 200 && strings.Contains(string(b), `"active":true`) {
					break
				}
			}
			if time.Since(back) > 60*time.Second {
				r.t.Fatalf("node %d has not recovered 60s after the dependency returned", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(back)
}

// audit checks, after recovery, that nothing acknowledged was lost: every
// issued token not revoked is active on every node, every acknowledged
// revocation holds on every node and, for JWTs, in the verify subscriber.
func (r *faultRig) audit(s *phaseStats) {
	r.led.mu.Lock()
	toks := append([]issued(nil), r.led.toks...)
	r.led.mu.Unlock()
	auditPhase := newPhase("audit")
	// Wait out the staleness bound for the last revocations.
	time.Sleep(staleBound)
	checked := map[string]int{}
	for _, it := range toks {
		// This phase's tokens and a sample of the earlier ones.
		if it.phase == s.name && checked[it.phase] >= 300 || it.phase != s.name && checked[it.phase] >= 20 {
			continue
		}
		mustActive, mustInactive := r.led.state(it, time.Now())
		if !mustActive && !mustInactive {
			continue
		}
		checked[it.phase]++
		for i := range 2 {
			code, body := r.call(auditPhase, i, "/oauth2/introspect", r.dev, url.Values{"token": {it.tok}})
			active := strings.Contains(string(body), `"active":true`)
			if code != 200 || active != mustActive {
				s.wrong = append(s.wrong, fmt.Sprintf("after recovery, node %d: a %s token (issued in %s) introspects %d %s",
					i, map[bool]string{true: "live", false: "revoked"}[mustActive], it.phase, code, body))
			}
		}
		if !it.jwt && checked[it.phase] <= 20 {
			r.auditGateway(s, it, mustActive)
		}
		if it.jwt && mustInactive {
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := r.ver.Verify(context.Background(), it.tok)
				if errors.Is(err, verify.ErrRevoked) || err != nil && time.Now().Before(it.validFrom) {
					break // refused: as revoked, or (from a node whose clock runs ahead) as not yet valid
				}
				if time.Now().After(deadline) {
					s.wrong = append(s.wrong, fmt.Sprintf("verify subscriber still accepts a JWT revoked in %s: %v", it.phase, err))
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	r.auditChains(auditPhase)
	s.endedByRetry += auditPhase.endedByRetry
	s.wrong = append(s.wrong, auditPhase.wrong...)
	s.bad = append(s.bad, auditPhase.bad...)
}

// auditGateway checks that latch gateway lets a live opaque token through
// and refuses a revoked one (within 5 s: it learns of revocations from the
// feed of node 0).
func (r *faultRig) auditGateway(s *phaseStats, it issued, live bool) {
	hc := &http.Client{Timeout: hangLimit}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, r.gw, nil)
		req.Header.Set("Authorization", "Bearer "+it.tok)
		code := 0
		if resp, err := hc.Do(req); err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		if live && code == 200 || !live && code == 401 {
			return
		}
		if time.Now().After(deadline) {
			s.wrong = append(s.wrong, fmt.Sprintf("after recovery, latch gateway answers a %s opaque token (issued in %s) %d",
				map[bool]string{true: "live", false: "revoked"}[live], it.phase, code))
			return
		}
	}
}

// fault runs the load, injects inject, waits hold, calls restore (which
// returns when the dependency answers again), measures recovery and
// audits.
func (r *faultRig) fault(name string, hold time.Duration, inject, restore func()) *phaseStats {
	r.t.Helper()
	s := newPhase(name)
	stop := make(chan struct{})
	wg := r.load(s, stop)
	time.Sleep(time.Second)
	start := time.Now()
	rw := r.watchReady(s, start, stop)
	inject()
	time.Sleep(hold)
	restore()
	back := time.Now()
	s.recovery = r.recover(back)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	rw.Wait()
	r.audit(s)
	return s
}

func TestFaults(t *testing.T) {
	r := startFaultRig(t)
	var phases []*phaseStats
	only := os.Getenv("LATCH_FAULTS_ONLY") // a substring of the faults to run, while working on one
	run := func(name string, hold time.Duration, inject, restore func()) {
		if only != "" && name != "baseline" && !strings.Contains(name, only) {
			return
		}
		s := r.fault(name, hold, inject, restore)
		phases = append(phases, s)
		for _, b := range s.bad {
			t.Errorf("%s: %s", name, b)
		}
		for _, w := range s.wrong {
			t.Errorf("%s: wrong answer: %s", name, w)
		}
	}
	run("baseline", time.Second, func() {}, func() {})
	run("postgres fast stop, start", 3*time.Second, r.pg.StopFast, r.pg.Start)
	run("postgres hung (SIGSTOP) past every timeout", hangLimit+time.Second, r.pg.Pause, func() {
		r.pg.Resume()
		if err := r.pg.WaitReady(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
	run("redis stop, restart empty", 3*time.Second, r.rd.Stop, r.rd.Start)
	run("redis hung (SIGSTOP)", 5*time.Second, r.rd.Pause, r.rd.Resume)
	run("node 0 SIGKILL mid-load, restart", time.Second, func() { r.nodes[0].Kill() }, func() { r.start(0) })
	run("slow network node 1 <-> postgres (200ms/chunk), then dropped", 3*time.Second, func() {
		r.px.SetDelay(200 * time.Millisecond)
	}, func() {
		r.px.SetDelay(0)
		r.px.Drop()
	})
	run("node 1 clock 2 minutes ahead", 3*time.Second, func() {
		r.nodes[1].Stop(t)
		r.ahead[1] = 2 * time.Minute
		r.start(1, "--"+testClockFlag, r.ahead[1].String())
	}, func() {})

	final := newPhase("forks")
	r.auditForks(final)
	for _, w := range final.wrong {
		t.Errorf("refresh families: %s", w)
	}
	t.Log("figures per fault (docs/operations.md):")
	for _, s := range phases {
		t.Logf("%-62s requests %5d ok %5d 503 %v conn-errors %d max-latency %v recovery %v readyz-503-after %v readyz %v not-yet-valid %d families-ended-by-late-retry %d bad %d wrong %d",
			s.name, s.requests, s.ok, s.by503, s.connErr, s.maxLat.Round(time.Millisecond), s.recovery.Round(time.Millisecond),
			s.readyDown.Round(time.Millisecond), s.readyCode, s.notYetValid, s.endedByRetry, len(s.bad), len(s.wrong))
	}
	if t.Failed() {
		for i, p := range r.nodes {
			for _, line := range strings.Split(p.Stderr.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Logf("node %d: %s", i, line)
				}
			}
		}
	}
	if os.Getenv("LATCH_FAULT_LOGS") != "" {
		for i, p := range r.nodes {
			t.Logf("node %d log:\n%s", i, p.Stderr)
		}
	}
}

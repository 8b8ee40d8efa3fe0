package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

type feedEntry struct {
	Seq       int64  `json:"seq"`
	Kind      string `json:"kind"`
	Iss       string `json:"iss"`
	JTI       string `json:"jti"`
	TokenHash string `json:"token_hash"`
	Exp       int64  `json:"exp"`
}

type feedAnswer struct {
	Entries []feedEntry `json:"entries"`
	Next    int64       `json:"next"`
	Reset   bool        `json:"reset"`
}

// run starts the server's background loop (and so the feed's broadcaster)
// until the test ends; the returned func stops it early.
func (e *env) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

// revokeJWT issues a JWT to c, revokes it and returns it with its jti.
func (e *env) revokeJWT(c creds) (tok, jti string) {
	e.t.Helper()
	tok = e.token(c, nil)
	if w := e.do("/oauth2/revoke", c, url.Values{"token": {tok}}); w.Code != 200 {
		e.t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	return tok, jtiOf(e.t, tok)
}

func jtiOf(tb testing.TB, tok string) string {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	mustJSON(tb, b, &c)
	return c.JTI
}

func basic(c creds) http.Header {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	return r.Header
}

// feed long-polls the feed in process and decodes a 200 answer.
func (e *env) feed(c creds, query string) feedAnswer {
	e.t.Helper()
	w := e.get("/oauth2/revocations?"+query, basic(c))
	if w.Code != 200 {
		e.t.Fatalf("GET /oauth2/revocations?%s: %d %s", query, w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var a feedAnswer
	mustJSON(e.t, w.Body.Bytes(), &a)
	return a
}

func TestFeed_RequiresConfidentialClient(t *testing.T) {
	e := newEnv(t)
	e.run()
	public := e.client(registry.ClientSpec{AuthMethod: "none", GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.test/cb"}})
	jc := e.jwtClient()
	for name, h := range map[string]http.Header{
		"none":          nil,
		"wrong secret":  basic(creds{jc.ID, "nope"}),
		"public client": basic(creds{public.ID, ""}),
	} {
		if w := e.get("/oauth2/revocations?after=0", h); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, w.Code, w.Body)
		}
	}
	// Credentials in the URL are not client authentication.
	if w := e.get("/oauth2/revocations?client_id="+url.QueryEscape(jc.ID)+"&client_secret="+url.QueryEscape(jc.Secret), nil); w.Code != http.StatusUnauthorized {
		t.Errorf("credentials in the query: %d, want 401", w.Code)
	}
}

func TestFeed_BadParameters_400(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc := e.jwtClient()
	for _, q := range []string{"after=-1", "after=x", "after=1&after=2", "wait=-1s", "wait=soon", "after=99999999999999999999"} {
		if w := e.get("/oauth2/revocations?"+q, basic(jc)); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, w.Code, w.Body)
		}
	}
	h := basic(jc)
	h.Set("Accept", "text/event-stream")
	h.Set("Last-Event-ID", "abc")
	if w := e.get("/oauth2/revocations", h); w.Code != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: %d, want 400", w.Code)
	}
}

func TestFeed_LongPoll_BacklogReturnedAtOnce(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc, oc := e.jwtClient(), e.opaqueClient()
	_, jti1 := e.revokeJWT(jc)
	_, jti2 := e.revokeJWT(jc)
	opaque := e.token(oc, nil)
	if w := e.do("/oauth2/revoke", oc, url.Values{"token": {opaque}}); w.Code != 200 {
		t.Fatalf("revoke opaque: %d", w.Code)
	}

	start := time.Now()
	a := e.feed(jc, "after=0&wait=25s")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("backlog answered after %v, want at once", d)
	}
	// The broadcaster reads the log a moment after a revocation answers
	// 200; the follower then gets the rest on its next poll.
	for len(a.Entries) < 3 {
		b := e.feed(jc, fmt.Sprintf("after=%d&wait=5s", a.Next))
		if len(b.Entries) == 0 {
			t.Fatalf("entries = %+v, want 3", a.Entries)
		}
		a.Entries, a.Next = append(a.Entries, b.Entries...), b.Next
	}
	if len(a.Entries) != 3 {
		t.Fatalf("entries = %+v, want 3", a.Entries)
	}
	want := []struct{ kind, jti string }{{"jwt", jti1}, {"jwt", jti2}, {"opaque", ""}}
	for i, w := range want {
		got := a.Entries[i]
		if got.Kind != w.kind || got.JTI != w.jti || got.Exp == 0 || (i > 0 && got.Seq <= a.Entries[i-1].Seq) {
			t.Errorf("entry %d = %+v, want kind %s jti %s, exp set, seq increasing", i, got, w.kind, w.jti)
		}
		if w.kind == "jwt" && got.Iss != testIssuer {
			t.Errorf("entry %d iss = %q", i, got.Iss)
		}
	}
	if h := a.Entries[2].TokenHash; h != base64.RawURLEncoding.EncodeToString(token.Hash(opaque)) {
		t.Errorf("token_hash = %q, want base64url of SHA-256 of the token", h)
	}
	if a.Next != a.Entries[2].Seq {
		t.Errorf("next = %d, want %d", a.Next, a.Entries[2].Seq)
	}
	// Paging from a cursor gives only what follows it.
	if b := e.feed(jc, "after="+strconv.FormatInt(a.Entries[0].Seq, 10)); len(b.Entries) != 2 || b.Entries[0].JTI != jti2 {
		t.Errorf("after first entry: %+v", b.Entries)
	}
}

func TestFeed_LongPoll_WaitsThenWakesOnRevocation(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc := e.jwtClient()
	head := e.feed(jc, "after=0").Next

	got := make(chan feedAnswer, 1)
	start := time.Now()
	go func() { got <- e.feed(jc, fmt.Sprintf("after=%d&wait=20s", head)) }()
	select {
	case a := <-got:
		t.Fatalf("answered before any revocation: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
	revokedAt := time.Now()
	_, jti := e.revokeJWT(jc)
	select {
	case a := <-got:
		if len(a.Entries) != 1 || a.Entries[0].JTI != jti {
			t.Fatalf("woken with %+v, want the new revocation", a)
		}
		t.Logf("woken %v after the revocation (waited %v)", time.Since(revokedAt), time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll not woken by the revocation within 5s")
	}
}

func TestFeed_LongPoll_TimesOutWithEmptyPage(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc := e.jwtClient()
	e.revokeJWT(jc)
	head := e.feed(jc, "").Next
	start := time.Now()
	a := e.feed(jc, fmt.Sprintf("after=%d&wait=200ms", head))
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("answered after %v, want about 200ms", d)
	}
	if a.Entries == nil || len(a.Entries) != 0 || a.Next != head {
		t.Errorf("timeout answer %+v, want entries [] and next %d", a, head)
	}
}

// Revocations written to the store by someone else (the CLI, another
// node) reach followers through the broadcaster's polling; entries that are
// no resource server's business are skipped, and the cursor moves past them.
func TestFeed_OtherWritersSeen_PseudoIssuerForeignAndExpiredFiltered(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc := e.jwtClient()
	ctx := context.Background()
	now := e.clock.Now()
	revoke := func(r latch.Revocation) int64 {
		r.RevokedAt = now
		if err := e.db.Revoke(ctx, &r); err != nil {
			t.Fatal(err)
		}
		return r.Seq
	}
	head := e.feed(jc, "").Next
	got := make(chan feedAnswer, 1)
	go func() { got <- e.feed(jc, fmt.Sprintf("after=%d&wait=10s", head)) }()
	time.Sleep(50 * time.Millisecond)
	revoke(latch.Revocation{Kind: latch.RevokeJWT, Issuer: "client-assertion:" + jc.ID, JTI: "a1", ExpiresAt: now.Add(time.Hour)})
	revoke(latch.Revocation{Kind: latch.RevokeJWT, Issuer: "https://other.test", JTI: "f1", ExpiresAt: now.Add(time.Hour)})
	revoke(latch.Revocation{Kind: latch.RevokeJWT, Issuer: testIssuer, JTI: "expired", ExpiresAt: now.Add(-time.Second)})
	last := revoke(latch.Revocation{Kind: latch.RevokeJWT, Issuer: testIssuer, JTI: "cli", ExpiresAt: now.Add(time.Hour)})
	select {
	case a := <-got:
		// The wake-up may come between the writes; read on to the end.
		entries := a.Entries
		for a.Next < last {
			a = e.feed(jc, fmt.Sprintf("after=%d&wait=5s", a.Next))
			entries = append(entries, a.Entries...)
		}
		if len(entries) != 1 || entries[0].JTI != "cli" {
			t.Errorf("entries = %+v, want only the jti of this issuer", entries)
		}
		if a.Next != last {
			t.Errorf("next = %d, want %d", a.Next, last)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a revocation written to the store by another writer was not seen within 5s")
	}
	// A cursor behind filtered entries moves past them with nothing to send.
	if a := e.feed(jc, fmt.Sprintf("after=%d", head)); len(a.Entries) != 1 || a.Next != last {
		t.Errorf("re-read from %d: %+v, want the one entry and next %d", head, a, last)
	}
}

// A log longer than the in-memory ring: a follower from 0 is served from
// the store, in pages of at most 1000, and continues seamlessly into the
// ring.
func TestFeed_FollowerBehindRing_PagesFromStoreIntoRing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 9,000 revocations")
	}
	const total = 9000 // more than the ring's 8192
	e := newEnv(t)
	ctx := context.Background()
	now := e.clock.Now()
	for i := range total {
		if err := e.db.Revoke(ctx, &latch.Revocation{Kind: latch.RevokeJWT, Issuer: testIssuer, JTI: fmt.Sprint("j", i), ExpiresAt: now.Add(time.Hour), RevokedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	e.run()
	jc := e.jwtClient()
	var got []feedEntry
	cursor := int64(0)
	for pages := 0; ; pages++ {
		a := e.feed(jc, fmt.Sprintf("after=%d", cursor))
		if len(a.Entries) > 1000 {
			t.Fatalf("page of %d entries", len(a.Entries))
		}
		got = append(got, a.Entries...)
		if len(a.Entries) == 0 {
			if a.Next != cursor || pages != 9 {
				t.Errorf("end: next %d cursor %d after %d pages", a.Next, cursor, pages)
			}
			break
		}
		cursor = a.Next
	}
	if len(got) != total {
		t.Fatalf("read %d entries, want %d", len(got), total)
	}
	for i, e := range got {
		if e.JTI != fmt.Sprint("j", i) || (i > 0 && e.Seq != got[i-1].Seq+1) {
			t.Fatalf("entry %d = %+v: out of order or missing", i, e)
		}
	}
	// And live entries continue from the end.
	_, jti := e.revokeJWT(jc)
	if a := e.feed(jc, fmt.Sprintf("after=%d&wait=5s", cursor)); len(a.Entries) != 1 || a.Entries[0].JTI != jti {
		t.Fatalf("after the backlog: %+v", a.Entries)
	}
}

func TestFeed_CursorAheadOfLog_Reset(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc := e.jwtClient()
	e.revokeJWT(jc)
	a := e.feed(jc, "after=1000000&wait=1s")
	if !a.Reset || a.Next != 0 || len(a.Entries) != 0 {
		t.Fatalf("cursor ahead of the log: %+v, want reset to 0", a)
	}
}

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	id, event, data string
}

// readSSE parses events (and id-only records) from r into a channel.
func readSSE(r *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func openSSE(t *testing.T, base string, c creds, lastEventID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/oauth2/revocations?after=0", nil)
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("SSE: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	stop := func() { cancel(); resp.Body.Close() }
	t.Cleanup(stop)
	return readSSE(bufio.NewReader(resp.Body)), stop
}

// nextEntry returns the next event carrying an entry.
func nextEntry(t *testing.T, ch <-chan sseEvent) (sseEvent, feedEntry) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("SSE stream ended")
			}
			if ev.data == "" {
				continue
			}
			var fe feedEntry
			mustJSON(t, []byte(ev.data), &fe)
			if ev.id != strconv.FormatInt(fe.Seq, 10) {
				t.Errorf("event id %q, entry seq %d", ev.id, fe.Seq)
			}
			return ev, fe
		case <-timeout:
			t.Fatal("no SSE event within 5s")
		}
	}
}

func TestFeed_SSE_StreamsAndResumesFromLastEventID(t *testing.T) {
	e := newEnv(t)
	e.run()
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	jc := e.jwtClient()
	_, jti1 := e.revokeJWT(jc)
	_, jti2 := e.revokeJWT(jc)

	events, stop := openSSE(t, ts.URL, jc, "")
	ev1, e1 := nextEntry(t, events)
	_, e2 := nextEntry(t, events)
	if e1.JTI != jti1 || e2.JTI != jti2 {
		t.Fatalf("backlog: %s %s, want %s %s", e1.JTI, e2.JTI, jti1, jti2)
	}
	_, jti3 := e.revokeJWT(jc)
	if _, e3 := nextEntry(t, events); e3.JTI != jti3 {
		t.Fatalf("live event %s, want %s", e3.JTI, jti3)
	}
	stop()

	// Reconnecting with the id of the first event resumes after it.
	events, _ = openSSE(t, ts.URL, jc, ev1.id)
	if _, e := nextEntry(t, events); e.JTI != jti2 {
		t.Fatalf("resumed at %s, want %s", e.JTI, jti2)
	}
	if _, e := nextEntry(t, events); e.JTI != jti3 {
		t.Fatalf("then %s, want %s", e.JTI, jti3)
	}
}

func TestFeed_SSE_CursorAheadOfLog_ResetEvent(t *testing.T) {
	e := newEnv(t)
	e.run()
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	jc := e.jwtClient()
	_, jti := e.revokeJWT(jc)
	events, _ := openSSE(t, ts.URL, jc, "1000000")
	select {
	case ev := <-events:
		if ev.event != "reset" {
			t.Fatalf("first event %+v, want reset", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reset event")
	}
	if _, e := nextEntry(t, events); e.JTI != jti {
		t.Fatalf("after reset: %s, want %s from the start of the log", e.JTI, jti)
	}
}

func TestFeed_ConnectionCapPerClient_429(t *testing.T) {
	e := newEnv(t)
	e.run()
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	jc, other := e.jwtClient(), e.jwtClient()
	// SSE streams answer their headers once admitted, so eight of them
	// opened one after the other hold eight slots for sure.
	var stops []func()
	for range 8 {
		_, stop := openSSE(t, ts.URL, jc, "")
		stops = append(stops, stop)
	}
	try := func(c creds) int {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/oauth2/revocations?after=0", nil)
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return resp.StatusCode
	}
	if code := try(jc); code != http.StatusTooManyRequests {
		t.Fatalf("a 9th concurrent feed request of one client: %d, want 429", code)
	}
	if code := try(other); code != 200 {
		t.Errorf("another client: %d, want 200", code)
	}
	stops[0]()
	for deadline := time.Now().Add(5 * time.Second); try(jc) != 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed stream was not released")
		}
	}
}

// TestFeed_ConnectionCap_LongPolls_429WithRFC6749Body: eight long-polls
// of one client hold all its slots; a ninth request, long-poll or SSE, is
// answered 429 with Retry-After and an RFC 6749 §5.2-style JSON body; once
// one long-poll ends, a request is admitted again.
func TestFeed_ConnectionCap_LongPolls_429WithRFC6749Body(t *testing.T) {
	e := newEnv(t)
	e.run()
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	jc := e.jwtClient()

	// A holder long-polls a quiet feed (25s, the cap) and polls again when
	// answered, until stopped, so it holds its slot however slow the
	// machine is.
	var wg sync.WaitGroup
	var cancels []context.CancelFunc
	for range 8 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/oauth2/revocations?after=0&wait=25s", nil)
				req.SetBasicAuth(url.QueryEscape(jc.ID), url.QueryEscape(jc.Secret))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	stopAll := func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}
	t.Cleanup(stopAll)

	type answer struct {
		code       int
		retryAfter string
		ctype      string
		body       []byte
	}
	try := func(sse bool) answer {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/oauth2/revocations?after=0", nil)
		req.SetBasicAuth(url.QueryEscape(jc.ID), url.QueryEscape(jc.Secret))
		if sse {
			req.Header.Set("Accept", "text/event-stream")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), ctype: resp.Header.Get("Content-Type")}
		if a.code != 200 || !sse {
			a.body = []byte(readAll(t, resp.Body)) // an admitted SSE stream would not end
		}
		return a
	}

	// until tries until the answer has status want. The holders are
	// admitted one by one, and each re-polls every 25s, so a try may find a
	// slot free for a moment; the deadline only guards against a hang.
	until := func(sse bool, want int) answer {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			a := try(sse)
			if a.code == want {
				return a
			}
			if a.code != 200 && a.code != http.StatusTooManyRequests {
				t.Fatalf("feed request (sse %v): %d %s", sse, a.code, a.body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("feed request (sse %v): still %d after 30s, want %d", sse, a.code, want)
			}
		}
	}
	refused := until(false, http.StatusTooManyRequests)
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	mustJSON(t, refused.body, &body)
	if refused.retryAfter == "" || !strings.HasPrefix(refused.ctype, "application/json") || body.Error != "rate_limited" || !strings.Contains(body.Description, "8 revocation feed connections") {
		t.Fatalf("429 answer: Retry-After %q, Content-Type %q, body %s", refused.retryAfter, refused.ctype, refused.body)
	}
	if sse := until(true, http.StatusTooManyRequests); sse.retryAfter == "" || !strings.Contains(string(sse.body), `"error":"rate_limited"`) {
		t.Fatalf("a ninth request as SSE: %d %q %s", sse.code, sse.retryAfter, sse.body)
	}

	// One holder stops: its slot is released and a request is admitted.
	cancels[0]()
	until(false, 200)
}

// cmd/latch serves with ReadTimeout 15s and WriteTimeout 30s; a long-poll
// or a stream must outlive both. Here they are shrunk to milliseconds.
func TestFeed_OutlivesServerReadAndWriteTimeouts(t *testing.T) {
	e := newEnv(t)
	e.run()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.h, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	jc := e.jwtClient()
	head := e.feed(jc, "").Next

	events, _ := openSSE(t, base, jc, strconv.FormatInt(head, 10))

	got := make(chan feedAnswer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/oauth2/revocations?after=%d&wait=5s", base, head), nil)
		req.SetBasicAuth(url.QueryEscape(jc.ID), url.QueryEscape(jc.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			got <- feedAnswer{}
			return
		}
		defer resp.Body.Close()
		var a feedAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Errorf("long-poll answer after the server's timeouts: %d: %v", resp.StatusCode, err)
		}
		got <- a
	}()
	time.Sleep(700 * time.Millisecond)
	_, jti := e.revokeJWT(jc)
	select {
	case a := <-got:
		if len(a.Entries) != 1 || a.Entries[0].JTI != jti {
			t.Errorf("long-poll: %+v, want the revocation", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll: no answer")
	}
	if _, e := nextEntry(t, events); e.JTI != jti {
		t.Errorf("SSE: %s, want %s", e.JTI, jti)
	}
}

// Shutdown (Run's context ends) answers waiting long-polls at once, so a
// graceful http.Server.Shutdown is not held up by followers.
func TestFeed_Shutdown_EndsLongPolls(t *testing.T) {
	e := newEnv(t)
	stop := e.run()
	jc := e.jwtClient()
	head := e.feed(jc, "").Next
	got := make(chan feedAnswer, 1)
	go func() { got <- e.feed(jc, fmt.Sprintf("after=%d&wait=20s", head)) }()
	time.Sleep(100 * time.Millisecond)
	stop()
	select {
	case a := <-got:
		if len(a.Entries) != 0 || a.Next != head {
			t.Errorf("answer at shutdown: %+v", a)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("long-poll still waiting 3s after Run ended")
	}
}

// A log the server cannot read is a 503, never an empty "nothing revoked".
func TestFeed_StoreDown_503(t *testing.T) {
	e := newEnv(t)
	e.run()
	jc := e.jwtClient()
	e.feed(jc, "") // authenticate once while the store is up: the client is cached
	e.db.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		w := e.get("/oauth2/revocations?after=0", basic(jc))
		if w.Code == http.StatusServiceUnavailable {
			break
		}
		if w.Code != 200 || time.Now().After(deadline) {
			t.Fatalf("store closed: %d %s, want 503", w.Code, w.Body)
		}
	}
}

// BenchmarkFeed_RevokeToLongPollAnswer: issue a JWT, revoke it (one fsynced
// write) and receive it on a waiting long-poll, in process.
func BenchmarkFeed_RevokeToLongPollAnswer(b *testing.B) {
	e := newEnv(b)
	e.run()
	jc := e.jwtClient()
	head := e.feed(jc, "").Next
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got := make(chan feedAnswer, 1)
		go func() { got <- e.feed(jc, fmt.Sprintf("after=%d&wait=10s", head)) }()
		e.revokeJWT(jc)
		head = (<-got).Next
	}
}

package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// lineCounter is a slog handler that counts the lines it is given and
// remembers their messages.
type lineCounter struct {
	mu    *sync.Mutex
	lines *[]string
}

func (lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h lineCounter) Handle(_ context.Context, r slog.Record) error {
	var count int64
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "count" {
			count = a.Value.Int64()
		}
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, fmt.Sprintf("%s (count %d)", r.Message, count))
	h.mu.Unlock()
	return nil
}
func (h lineCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineCounter) WithGroup(string) slog.Handler      { return h }

// withCRC appends the CRC-32 that opaque tokens end with, as anyone can.
func withCRC(s string) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE([]byte(s)))
	return s + base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestGateway_ForgedTokenFlood_LegitimateFreshTokensPass_UpstreamSeesNoForged
// floods a real latch server (--introspection-rate 50, burst 100) and the
// real gateway over HTTP on loopback with forged opaque tokens at ten
// times the rate of fresh legitimate ones, interleaved, from the same
// address: well-formed untagged tokens with a valid CRC-32, tokens naming
// the server's real key id with a made-up tag, and tokens under a key
// nobody holds. At least 99% of the legitimate requests must succeed, the
// upstream must see none of the forged ones, and the gateway's log must
// stay a handful of lines, not one per request.
func TestGateway_ForgedTokenFlood_LegitimateFreshTokensPass_UpstreamSeesNoForged(t *testing.T) {
	const (
		legit   = 100
		perUser = 10 // forged requests per legitimate one
		workers = 8
	)
	is := newIssuer(t, func(c *server.Config) { c.IntrospectionRate = 50; c.IntrospectionBurst = 100 })
	owner := is.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, AccessTokenFormat: "opaque"})
	gwc := is.client(registry.ClientSpec{ID: "gateway", GrantTypes: []string{latch.GrantTokenExchange}, Audiences: []string{"api"}})

	var forgedSeen, legitSeen atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Kind") == "forged" {
			forgedSeen.Add(1)
		} else {
			legitSeen.Add(1)
		}
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)

	var mu sync.Mutex
	var lines []string
	gw, err := gateway.New(context.Background(), gateway.Config{Issuer: is.URL, ClientID: gwc.ID, ClientSecret: gwc.Secret,
		Upstream: upURL, InsecureAllowHTTP: true, Now: is.clock.Now, Logger: slog.New(lineCounter{&mu, &lines})})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	t.Cleanup(front.Close)

	// What an attacker holding one token of its own can make: the real
	// key id, copied from it, with a tag it cannot compute.
	own := is.token(owner, nil)
	otherKey, _ := token.GenerateTagKey(nil)
	forge := func(i int) string {
		switch i % 3 {
		case 0:
			tok, _ := token.NewOpaque(latch.KindAccess, nil)
			return tok
		case 1:
			tok, _ := token.NewTaggedOpaque(latch.KindAccess, otherKey, nil)
			return withCRC(tok[:49] + own[49:53] + tok[53:75])
		default:
			tok, _ := token.NewTaggedOpaque(latch.KindAccess, otherKey, nil)
			return tok
		}
	}
	type job struct {
		tok    string
		forged bool
	}
	var jobs []job
	for i := range legit {
		jobs = append(jobs, job{is.token(owner, nil), false})
		for j := range perUser {
			jobs = append(jobs, job{forge(i*perUser + j), true})
		}
	}
	exchangesBefore := is.exchanges.Load()

	var legitOK, legitFailed, forgedPassed atomic.Int64
	queue := make(chan job)
	var wg sync.WaitGroup
	client := front.Client()
	for range workers {
		wg.Go(func() {
			for j := range queue {
				req, _ := http.NewRequest(http.MethodGet, front.URL+"/v1/things", nil)
				req.Header.Set("Authorization", "Bearer "+j.tok)
				if j.forged {
					req.Header.Set("X-Test-Kind", "forged")
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case j.forged && resp.StatusCode == 200:
					forgedPassed.Add(1)
				case !j.forged && resp.StatusCode == 200:
					legitOK.Add(1)
				case !j.forged:
					legitFailed.Add(1)
				}
			}
		})
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("forged sent %d, legitimate sent %d, succeeded %d; forged passed %d; upstream saw %d forged, %d legitimate; exchanges %d; log lines %d:\n%s",
		legit*perUser, legit, legitOK.Load(), forgedPassed.Load(), forgedSeen.Load(), legitSeen.Load(),
		is.exchanges.Load()-exchangesBefore, len(lines), strings.Join(lines, "\n"))
	if ok := legitOK.Load(); ok*100 < legit*99 {
		t.Errorf("%d of %d fresh legitimate tokens succeeded, want at least 99%%", ok, legit)
	}
	if n := forgedSeen.Load(); n != 0 || forgedPassed.Load() != 0 {
		t.Errorf("the upstream saw %d forged requests, want none", n)
	}
	// One line per kind of event while the clock stands still (the
	// interval never elapses): a handful, whatever the flood's size.
	if len(lines) > 5 {
		t.Errorf("%d log lines for %d forged requests, want at most 5", len(lines), legit*perUser)
	}
}

func TestGateway_ForgedTags_RefusedLocally_LoggedOncePerIntervalWithCount(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := newSetup(t, func(c *gateway.Config) { c.Logger = slog.New(lineCounter{&mu, &lines}) })
	own := s.is.token(s.owner, nil)
	otherKey, _ := token.GenerateTagKey(nil)
	forge := func() string {
		tok, _ := token.NewTaggedOpaque(latch.KindAccess, otherKey, nil)
		return withCRC(tok[:49] + own[49:53] + tok[53:75])
	}
	before := s.is.exchanges.Load()
	for range 50 {
		if w := s.do("Bearer " + forge()); w.Code != 401 {
			t.Fatalf("forged tag: %d %s", w.Code, w.Body)
		}
	}
	s.is.clock.Advance(gateway.DefaultLogInterval)
	if w := s.do("Bearer " + forge()); w.Code != 401 {
		t.Fatalf("forged tag: %d", w.Code)
	}
	if n := s.is.exchanges.Load() - before; n != 0 || s.up.count() != 0 {
		t.Fatalf("forged tags cost %d exchanges and reached the upstream %d times", n, s.up.count())
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"gateway: refused opaque tokens with a forged tag (count 1)", "gateway: refused opaque tokens with a forged tag (count 50)"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestGateway_UntaggedMisses_BudgetPerAddress_OneAddressCannotSpendAnothers(t *testing.T) {
	// Without the key endpoint the gateway can check no tag: every token
	// takes the untagged path, as on an issuer that tags nothing.
	s := newSetup(t, func(c *gateway.Config) {
		c.TokenEndpoint = c.Issuer + "/oauth2/token"
		c.UntaggedRate, c.UntaggedPerSourceRate = 1000, 0.001 // burst 1 per address
	})
	from := func(addr string) func(*http.Request) { return func(r *http.Request) { r.RemoteAddr = addr } }
	codes := map[int]int{}
	for range 20 {
		codes[s.do("Bearer "+freshOpaque(t), from("192.0.2.1:1000")).Code]++
	}
	if codes[401] != 1 || codes[503] != 19 {
		t.Fatalf("one address's untagged misses: %v, want one exchanged (401) and the rest 503", codes)
	}
	if w := s.do("Bearer "+s.is.token(s.owner, nil), from("192.0.2.2:1000")); w.Code != 200 {
		t.Fatalf("another address's legitimate token: %d %s", w.Code, w.Body)
	}
	if n := s.is.exchanges.Load(); n != 2 {
		t.Fatalf("%d exchanges, want 2", n)
	}
}

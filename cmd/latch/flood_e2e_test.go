package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// TestVerify_Introspector_ForgedTokenFlood_LegitimateFreshTokensPass: the
// real `latch serve --introspection-rate 50` and an API behind
// verify.Introspector's middleware over HTTP on loopback. Forged opaque
// tokens at ten times the rate of fresh legitimate ones (untagged with a
// valid CRC-32, the server's key id with a made-up tag, an unknown key)
// leave at least 99% of the legitimate requests passing, and none of the
// forged ones reaches the handler.
func TestVerify_Introspector_ForgedTokenFlood_LegitimateFreshTokensPass(t *testing.T) {
	const legit, perUser, workers = 50, 10, 8
	dir := t.TempDir()
	p := startLatch(t, dir, "--introspection-rate", "50")
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	c := createClient(t, dir, "--format", "opaque", "--audience", "api", "--scope", "read")
	in, err := verify.NewIntrospector(context.Background(), verify.IntrospectorConfig{
		Issuer: p.Issuer, ClientID: dev.ID, ClientSecret: dev.Secret, Audience: "api", InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var forgedSeen atomic.Int64
	api := httptest.NewServer(in.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Kind") == "forged" {
			forgedSeen.Add(1)
		}
	})))
	t.Cleanup(api.Close)

	own := issueToken(t, p, c, url.Values{"scope": {"read"}})
	other, _ := token.GenerateTagKey(nil)
	forge := func(i int) string {
		tok, _ := token.NewTaggedOpaque(latch.KindAccess, other, nil)
		switch i % 3 {
		case 0:
			tok, _ = token.NewOpaque(latch.KindAccess, nil)
		case 1:
			body := tok[:49] + own[49:53] + tok[53:75]
			var sum [4]byte
			binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE([]byte(body)))
			tok = body + base64.RawURLEncoding.EncodeToString(sum[:])
		}
		return tok
	}
	type job struct {
		tok    string
		forged bool
	}
	var jobs []job
	for i := range legit {
		jobs = append(jobs, job{issueToken(t, p, c, url.Values{"scope": {"read"}}), false})
		for j := range perUser {
			jobs = append(jobs, job{forge(i*perUser + j), true})
		}
	}
	var ok atomic.Int64
	queue := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range queue {
				req, _ := http.NewRequest(http.MethodGet, api.URL, nil)
				req.Header.Set("Authorization", "Bearer "+j.tok)
				if j.forged {
					req.Header.Set("X-Test-Kind", "forged")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !j.forged && resp.StatusCode == 200 {
					ok.Add(1)
				}
			}
		})
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	t.Logf("forged sent %d, legitimate sent %d, succeeded %d; the handler saw %d forged", legit*perUser, legit, ok.Load(), forgedSeen.Load())
	if ok.Load()*100 < legit*99 || forgedSeen.Load() != 0 {
		t.Fatalf("%d of %d legitimate requests passed (want ≥ 99%%), %d forged reached the handler (want 0)", ok.Load(), legit, forgedSeen.Load())
	}
}

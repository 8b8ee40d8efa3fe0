package bff

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/latch-auth/latch/dpop"
)

// kindKey is the record kind of the BFF's own keys in the Store, bound
// into their sealing like kindSession.
const kindKey = "key"

// dpopKeyName names the DPoP key's record in the Store.
const dpopKeyName = "dpop"

// MaxDPoPRetryBody bounds the request body the BFF keeps in memory to send
// an API request a second time, when the upstream asks for a DPoP nonce
// (RFC 9449 §9). A larger body, or one of unknown length, is sent once,
// and the upstream's use_dpop_nonce answer reaches the app.
const MaxDPoPRetryBody = 64 << 10

// dpopClient is the BFF's side of DPoP (RFC 9449): the key its tokens are
// bound to and the last nonce each server handed out.
type dpopClient struct {
	prover *dpop.Prover
	// The last DPoP-Nonce of the authorization server and of the
	// upstream: sent with every proof until the server hands out another.
	issuerNonce, apiNonce nonceCache
}

type nonceCache struct {
	mu sync.Mutex
	v  string
}

func (n *nonceCache) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.v
}

// update keeps the DPoP-Nonce of resp, if it has one.
func (n *nonceCache) update(h http.Header) {
	if v := h.Get(dpop.NonceHeader); v != "" && len(v) <= 512 && isPrintable(v) {
		n.mu.Lock()
		n.v = v
		n.mu.Unlock()
	}
}

// loadDPoPKey returns the BFF's DPoP key: the one in store, or, on the
// first start of the first node, a new P-256 key, stored sealed like the
// sessions (AES-256-GCM under Config.Key, bound to its record name). Every
// node on one store gets the key the first one stored, so tokens bound to
// it work on any node and survive restarts.
func loadDPoPKey(ctx context.Context, store Store, seal *sealer) (*ecdsa.PrivateKey, error) {
	fresh, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bff: generate the DPoP key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(fresh)
	if err != nil {
		return nil, fmt.Errorf("bff: generate the DPoP key: %w", err)
	}
	sealed, err := seal.seal(kindKey, []byte(dpopKeyName), der)
	if err != nil {
		return nil, err
	}
	stored, err := store.CreateKey(ctx, dpopKeyName, sealed)
	if err != nil {
		return nil, fmt.Errorf("bff: store the DPoP key: %w", err)
	}
	plain, err := seal.open(kindKey, []byte(dpopKeyName), stored)
	if err != nil {
		return nil, errors.New("bff: the DPoP key in the store cannot be opened: it was sealed under another Key (was the key file replaced?). Sessions sealed under the old Key are lost too: delete the store's key record (SQLite: DELETE FROM bff_keys; Redis: DEL latch:bff:key:" + dpopKeyName + ", or the key under your own prefix) or start on an empty store")
	}
	k, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, fmt.Errorf("bff: the DPoP key in the store: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("bff: the DPoP key in the store is a %T, not a P-256 key", k)
	}
	return ek, nil
}

// DPoPThumbprint returns the RFC 7638 thumbprint of the BFF's DPoP key,
// the cnf.jkt of the tokens it holds; "" without Config.DPoP.
func (b *BFF) DPoPThumbprint() string { return b.jkt() }

// jkt returns the thumbprint the BFF's tokens are bound to, "" without
// DPoP.
func (b *BFF) jkt() string {
	if b.dpop == nil {
		return ""
	}
	return b.dpop.prover.JKT()
}

// boundToken is the access token a proxied request carries, and the key
// it is bound to ("": a Bearer token).
type boundToken struct {
	tok, jkt string
}

// dpopTransport sends the proxied requests of DPoP-bound tokens with a
// proof for each (RFC 9449 §7.1), made here because only here is the final
// upstream URL known, and sends a request once more, with the nonce, when
// the upstream answers use_dpop_nonce (§9).
type dpopTransport struct {
	next http.RoundTripper
	d    *dpopClient
}

func (t *dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	bt, _ := r.Context().Value(tokenKey{}).(boundToken)
	if bt.jkt == "" {
		return t.next.RoundTrip(r)
	}
	// A body is kept for a retry only once the upstream is known to use
	// nonces: the others never ask for one.
	var body []byte
	replayable := r.Body == nil || r.Body == http.NoBody
	if !replayable && t.d.apiNonce.get() != "" && r.ContentLength > 0 && r.ContentLength <= MaxDPoPRetryBody {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, MaxDPoPRetryBody+1)); err != nil {
			return nil, fmt.Errorf("bff: read the request body: %w", err)
		}
		r.Body.Close()
		if int64(len(body)) != r.ContentLength {
			return nil, fmt.Errorf("bff: the request body has %d bytes, not its Content-Length %d", len(body), r.ContentLength)
		}
		replayable = true
	}
	for attempt := 0; ; attempt++ {
		nonce := t.d.apiNonce.get()
		proof, err := t.d.prover.Proof(r.Method, r.URL.String(), bt.tok, nonce)
		if err != nil {
			return nil, err
		}
		out := r.Clone(r.Context())
		out.Header.Set(dpop.HeaderName, proof)
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := t.next.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		t.d.apiNonce.update(resp.Header)
		if attempt > 0 || !replayable || !askedForNonce(resp) || t.d.apiNonce.get() == nonce {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}
}

// askedForNonce reports whether resp is a resource server's refusal for
// want of a nonce: 401 with a DPoP challenge error="use_dpop_nonce"
// (RFC 9449 §9).
func askedForNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, dpop.Scheme) && strings.Contains(params, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}

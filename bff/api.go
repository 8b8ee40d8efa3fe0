package bff

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/internal/proxypath"
)

// tokenKey carries the access token, a boundToken, from api to the
// proxy's Rewrite and the DPoP transport.
type tokenKey struct{}

// api forwards a request under APIPrefix to the upstream with the
// session's access token, refreshed first when it expires within
// RefreshSkew or the revocation feed denylisted it. The path under the
// prefix is cleaned first (proxypath.Clean), or refused with 400: it must
// not leave the upstream's base path, nor reach the BFF's own /bff/
// routes through an upstream that resolves "..".
func (b *BFF) api(w http.ResponseWriter, r *http.Request) error {
	u, err := b.cleanAPIPath(r.URL)
	if err != nil {
		return err
	}
	r = r.WithContext(r.Context())
	r.URL = u
	if !isSafeMethod(r.Method) {
		if err := b.checkCSRF(r); err != nil {
			return err
		}
	}
	if b.cfg.Ready != nil && !b.cfg.Ready() {
		// The revocation feed is down: a session revoked meanwhile must
		// not reach the API.
		return unavailable("the revocation feed cannot be reached; retry later", nil)
	}
	ls, err := b.loadSession(r)
	if err != nil {
		return err
	}
	bt, err := b.accessToken(r.Context(), ls)
	if err != nil {
		return err
	}
	b.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, bt)))
	return nil
}

// cleanAPIPath returns a copy of u whose path under APIPrefix is cleaned.
func (b *BFF) cleanAPIPath(u *url.URL) (*url.URL, error) {
	prefix := b.cfg.APIPrefix
	rest, ok := strings.CutPrefix(u.EscapedPath(), prefix)
	if ok {
		esc, dec, err := proxypath.Clean(rest)
		if err == nil {
			return proxypath.Set(u, prefix+esc, prefix+dec), nil
		}
	}
	return nil, &httpError{status: http.StatusBadRequest, code: CodeInvalidRequest, desc: "the API path is not accepted: it must stay under " + prefix + "/ without dot segments hidden by encoding"}
}

// needsRefresh reports whether s's access token must be replaced before
// use, and whether that is because it was revoked. A token bound to
// another key than the BFF's, or unbound while the BFF binds its tokens
// (DPoP was just switched on or off), is replaced too: the refresh
// token of a confidential client is not bound (RFC 9449 §5), so the
// refresh binds the new access token to the current key.
func (b *BFF) needsRefresh(ctx context.Context, s *session, now time.Time) (need, revoked bool) {
	if s.AccessJTI != "" && b.cfg.IsRevoked != nil && b.cfg.IsRevoked(ctx, b.cfg.Issuer, s.AccessJTI) {
		return true, true
	}
	return s.JKT != b.jkt() || now.Add(b.cfg.RefreshSkew).Unix() >= s.AccessExp, false
}

// accessToken returns the access token to forward for ls.
func (b *BFF) accessToken(ctx context.Context, ls *liveSession) (boundToken, error) {
	if need, _ := b.needsRefresh(ctx, &ls.s, b.cfg.Now()); !need {
		return boundToken{tok: ls.s.AccessToken, jkt: ls.s.JKT}, nil
	}
	return b.refresh(ctx, ls.key)
}

// flight is one refresh of one session, shared by every request of that
// session that needs it while it runs.
type flight struct {
	done chan struct{}
	tok  boundToken
	err  error
}

// refresh returns a fresh access token for the session under key, running
// at most one refresh per session at a time in this process: requests
// arriving while one runs wait for it and share its result (single
// flight). A refresh token is single-use and rotated; two refreshes with
// the same one would look like theft to the authorization server, which
// then revokes the whole family (security invariant 7).
//
// The refresh itself runs detached from the request that started it, so
// that the browser closing that one tab does not fail the others.
func (b *BFF) refresh(ctx context.Context, key [32]byte) (boundToken, error) {
	b.flightsMu.Lock()
	f, running := b.flights[key]
	if !running {
		f = &flight{done: make(chan struct{})}
		b.flights[key] = f
	}
	b.flightsMu.Unlock()
	if !running {
		f.tok, f.err = b.doRefresh(context.WithoutCancel(ctx), key)
		b.flightsMu.Lock()
		delete(b.flights, key)
		b.flightsMu.Unlock()
		close(f.done)
	}
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return boundToken{}, ctx.Err()
	}
}

// doRefresh is one flight. It reads the session afresh first: a flight
// that finished just before this one started (or another BFF node) may
// already have replaced the token, and refreshing again with the rotated
// refresh token would be a reuse. The new tokens are in the store before
// any waiter is released, so no request ever sees a token the store does
// not have.
func (b *BFF) doRefresh(ctx context.Context, key [32]byte) (boundToken, error) {
	now := b.cfg.Now()
	s, _, err := b.readSession(ctx, key, now)
	if err != nil {
		return boundToken{}, err
	}
	current := boundToken{tok: s.AccessToken, jkt: s.JKT}
	need, revoked := b.needsRefresh(ctx, s, now)
	if !need {
		return current, nil
	}
	// Still usable if the refresh cannot be done: not revoked, not yet
	// expired, with a margin for the trip to the upstream, and bound to
	// no key or to the BFF's (a token bound to a key the BFF no longer
	// holds cannot be proven).
	usable := !revoked && now.Add(5*time.Second).Unix() < s.AccessExp && (s.JKT == "" || s.JKT == b.jkt())
	if s.RefreshToken == "" {
		if usable {
			return current, nil
		}
		b.cfg.Store.DeleteSession(ctx, key[:])
		if revoked {
			return boundToken{}, errRevoked
		}
		return boundToken{}, errLoginRequired
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.RefreshToken}}
	tr, err := b.iss.token(ctx, form)
	if err != nil {
		if isInvalidGrant(err) {
			// Final: the family was revoked (logout everywhere, reuse
			// detection, an admin) or expired.
			if derr := b.cfg.Store.DeleteSession(ctx, key[:]); derr != nil {
				b.cfg.Logger.Error("bff: delete revoked session", "err", derr)
			}
			b.cfg.Logger.Info("bff: session revoked at the authorization server", "sub", s.Subject, "denylisted", revoked)
			return boundToken{}, errRevoked
		}
		if usable {
			b.cfg.Logger.Warn("bff: refresh failed; forwarding the current access token until it expires", "sub", s.Subject, "err", err)
			return current, nil
		}
		return boundToken{}, unavailable("the authorization server cannot refresh the session now; retry later", err)
	}
	b.setAccess(s, tr, now)
	s.Refreshes++
	sealed, err := b.sealSession(key, s)
	if err != nil {
		return boundToken{}, err
	}
	if err := b.cfg.Store.UpdateSession(ctx, key[:], sealed, now); err != nil {
		if errors.Is(err, latch.ErrNotFound) {
			// Logged out while the refresh ran: the new tokens belong to
			// no one; revoke them rather than leave them live.
			if rerr := b.iss.revoke(ctx, s.RefreshToken, "refresh_token"); rerr != nil {
				b.cfg.Logger.Warn("bff: revoke tokens of a session ended during refresh", "err", rerr)
			}
			return boundToken{}, errLoginRequired
		}
		// The rotated refresh token is lost with this write: the session
		// cannot be refreshed again.
		b.cfg.Logger.Error("bff: cannot store refreshed tokens; the session will need a new login", "sub", s.Subject, "err", err)
		return boundToken{}, unavailable("the session store cannot be reached", err)
	}
	return boundToken{tok: s.AccessToken, jkt: s.JKT}, nil
}

// newProxy builds the reverse proxy to the upstream. With Rewrite (not
// Director), ReverseProxy removes the hop-by-hop headers and every inbound
// Forwarded and X-Forwarded-* before calling it. The browser's cookies and
// any Authorization or DPoP header it sent are dropped: the upstream sees
// only the user's access token, with the BFF's proof when it is bound.
func (b *BFF) newProxy() *httputil.ReverseProxy {
	upstream := b.cfg.Upstream
	prefix := b.cfg.APIPrefix
	transport := b.cfg.Transport
	if b.dpop != nil {
		transport = &dpopTransport{next: transport, d: b.dpop}
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Path = strings.TrimPrefix(out.URL.Path, prefix)
			if out.URL.RawPath != "" {
				out.URL.RawPath = strings.TrimPrefix(out.URL.RawPath, prefix)
			}
			pr.SetURL(upstream)
			pr.SetXForwarded()
			h := out.Header
			h.Del("Cookie")
			h.Del(CSRFHeader)
			h.Del(dpop.HeaderName)
			bt, _ := pr.In.Context().Value(tokenKey{}).(boundToken)
			if bt.jkt != "" {
				// RFC 9449 §7.1; the proof is added by dpopTransport.
				h["Authorization"] = []string{dpop.Scheme + " " + bt.tok}
			} else {
				h["Authorization"] = []string{"Bearer " + bt.tok}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			// The upstream's DPoP nonce is for the BFF's proofs (kept by
			// dpopTransport), not the app's business.
			resp.Header.Del(dpop.NonceHeader)
			// The upstream shares the BFF's origin: it must not set or
			// clear the BFF's own cookies.
			cookies := resp.Header.Values("Set-Cookie")
			if len(cookies) == 0 {
				return nil
			}
			resp.Header.Del("Set-Cookie")
			for _, c := range cookies {
				name, _, _ := strings.Cut(c, "=")
				if !strings.HasPrefix(strings.TrimSpace(name), b.cfg.CookieName) {
					resp.Header.Add("Set-Cookie", c)
				}
			}
			return nil
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				return
			}
			b.cfg.Logger.Warn("bff: upstream unreachable", "upstream", upstream.Redacted(), "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, &httpError{status: http.StatusBadGateway, code: "upstream_unreachable", desc: "the API cannot be reached"})
		},
	}
}

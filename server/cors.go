package server

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/latch-auth/latch"
)

// CORS (the Fetch standard's CORS protocol) for browser apps that call
// latch from JavaScript: an SPA using a public client with PKCE, such as
// one built on oidc-client-ts. docs/cors.md has the rules and why a BFF is
// still the safer design.
//
//   - Discovery and JWKS are public documents: any origin may read them
//     (Access-Control-Allow-Origin: *), as OIDC Discovery expects of a
//     provider that browser clients use.
//   - The token, revocation and userinfo endpoints answer a preflight
//     (OPTIONS) for an origin registered on some client: the preflight
//     carries no credentials, so it cannot tell which client is asking.
//     The actual request is allowed only for the origins of the client it
//     authenticates (token, revocation) or whose access token it carries
//     (userinfo). An error before the client is known is not readable by
//     the page: the browser reports a network error instead.
//   - Never Access-Control-Allow-Credentials: no endpoint reads cookies
//     for these requests, and a cookie-bearing cross-origin request is
//     exactly what must not work against the session cookie.

// corsMaxAge is how long a browser may cache a preflight's answer, in
// seconds: Chromium caps it at 7200; ten minutes keeps an origin removed
// from a client from lingering in browsers.
const corsMaxAge = 600

// corsAllowHeaders are the request headers an app may send: a bearer or
// DPoP-bound token (RFC 9449), the form's or JSON's content type.
const corsAllowHeaders = "Authorization, Content-Type, DPoP"

// corsExposeHeaders are the response headers an app may read: the
// challenge of a refused token (RFC 6750 §3), a DPoP nonce (RFC 9449 §8),
// the request ID to quote.
const corsExposeHeaders = "WWW-Authenticate, DPoP-Nonce, " + HeaderRequestID

// corsPublic allows any origin to read h's responses, and answers their
// preflights.
func corsPublic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if isPreflight(r) {
			w.Header().Set("Access-Control-Allow-Methods", "GET")
			w.Header().Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// corsKey is the context key of a request's corsRequest.
type corsKey struct{}

// corsRequest lets a handler that has identified the client allow the
// request's origin when it is the client's.
type corsRequest struct {
	w      http.ResponseWriter
	origin string
}

// corsClients wraps an endpoint that clients call with credentials:
// preflights are answered for origins registered on any client, and
// the actual request carries a corsRequest for allowClientOrigin.
// methods are the endpoint's methods, for Access-Control-Allow-Methods.
func (s *Server) corsClients(methods string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if isPreflight(r) {
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
			w.Header().Set("Cache-Control", "no-store")
			if s.webOrigins.registered(r.Context(), s, origin) {
				w.Header().Set("Access-Control-Allow-Origin", origin)
				w.Header().Set("Access-Control-Allow-Methods", methods)
				w.Header().Set("Access-Control-Allow-Headers", corsAllowHeaders)
				w.Header().Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ctx := context.WithValue(r.Context(), corsKey{}, &corsRequest{w: w, origin: origin})
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// allowClientOrigin lets the page at the request's origin read the
// response when that origin is one of c's web origins. It does nothing
// outside corsClients or without an Origin header.
func allowClientOrigin(ctx context.Context, c *latch.Client) {
	cr, ok := ctx.Value(corsKey{}).(*corsRequest)
	if !ok || c == nil || !slices.Contains(c.WebOrigins, cr.origin) {
		return
	}
	h := cr.w.Header()
	h.Set("Access-Control-Allow-Origin", cr.origin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// webOriginSet is the union of every client's web origins, read from the
// store at most once per ClientCacheTTL: preflights come before every
// credentialed request of an SPA, and listing the clients each time would
// cost a scan per preflight.
type webOriginSet struct {
	mu      sync.Mutex
	origins map[string]bool
	read    time.Time
}

func (o *webOriginSet) registered(ctx context.Context, s *Server, origin string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := s.now()
	if o.origins == nil || s.cfg.ClientCacheTTL < 0 || now.Sub(o.read) >= s.cfg.ClientCacheTTL {
		cs, err := s.store.Clients(ctx)
		if err != nil {
			// Keep what was read before, if anything: a preflight is no
			// reason to fail, and the actual request still checks the
			// client's own origins.
			s.log.WarnContext(ctx, "cors: listing clients for a preflight failed", "err", err)
			return o.origins[origin]
		}
		set := make(map[string]bool)
		for _, c := range cs {
			for _, w := range c.WebOrigins {
				set[w] = true
			}
		}
		o.origins, o.read = set, now
	}
	return o.origins[origin]
}

// forget makes the next preflight read the clients again: a client was
// changed through this server.
func (o *webOriginSet) forget() {
	o.mu.Lock()
	o.origins = nil
	o.mu.Unlock()
}

// allowMethods answers an OPTIONS request that is not a preflight (RFC
// 9110 §9.3.7): which methods the resource has.
func allowMethods(methods string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", methods)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// Authenticator routes bearer tokens to the check that fits them: latch
// opaque access tokens (lt_at_) to the Introspector, anything else to the
// Verifier as a JWT. A nil Verifier or Introspector refuses its kind. Realm
// and CookieName are as in Config. FingerprintCookie and
// AllowUnboundTokens are as in Config too; when FingerprintCookie is empty
// the Verifier's Config values apply. DPoP and ExternalURL are as in
// Config; when DPoP is nil, the Verifier's Config values apply, then the
// Introspector's.
type Authenticator struct {
	Verifier     *Verifier
	Introspector *Introspector
	Realm        string
	CookieName   string

	FingerprintCookie  string
	AllowUnboundTokens bool

	DPoP        *dpop.Checker
	ExternalURL string
}

// Authenticate checks raw and returns its claims.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (*Claims, error) {
	switch {
	case strings.HasPrefix(raw, token.PrefixAccess):
		if a.Introspector == nil {
			return nil, fmt.Errorf("verify: opaque tokens are not accepted here: %w", token.ErrMalformed)
		}
		return a.Introspector.Introspect(ctx, raw)
	case strings.HasPrefix(raw, token.PrefixRefresh):
		// security invariant 2: a refresh token is not an access token.
		return nil, fmt.Errorf("verify: a refresh token is not an access token: %w", token.ErrType)
	}
	if a.Verifier == nil {
		return nil, fmt.Errorf("verify: JWTs are not accepted here: %w", token.ErrMalformed)
	}
	return a.Verifier.Verify(ctx, raw)
}

type ctxKey struct{}

// requestAuth is what the middleware puts in the request context.
type requestAuth struct {
	claims *Claims
	realm  string
}

// ClaimsFromContext returns the claims the middleware verified for this
// request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	ra, ok := ctx.Value(ctxKey{}).(*requestAuth)
	if !ok || ra.claims == nil {
		return nil, false
	}
	return ra.claims, true
}

// Middleware returns next behind bearer-token authentication (RFC 6750).
// The token comes from the Authorization header, "Bearer" in any casing
// (§2.1), or, when there is none, from the cookie CookieName. A token in the
// query string (§2.3) is refused: it leaks into logs and Referer headers,
// and RFC 9700 §4.3.2 deprecates it; form bodies (§2.2) are not read.
//
// Answers (§3): no token, 401 with a bare challenge; a malformed request,
// 400 invalid_request; a token that fails any check, 401 invalid_token with
// a short error_description; an introspection endpoint that cannot answer,
// 503. On success the claims are in the request context
// (ClaimsFromContext).
//
// With a DPoP checker configured (Config.DPoP), the middleware also
// accepts Authorization: DPoP <token> with one DPoP header (RFC 9449 §7.1):
// the token is checked as above, must carry cnf.jkt, and the proof is
// checked against this request (method, and the URI as ExternalURL and
// the path make it) and that thumbprint, on every request, cache hits
// included. A failed proof is 401 with WWW-Authenticate: DPoP
// error="invalid_dpop_proof" (error="use_dpop_nonce" and a DPoP-Nonce
// header when a nonce is required), a token that fails is DPoP
// error="invalid_token", both with algs; a replay cache that cannot
// answer is 503. A request without a token gets both a Bearer and a DPoP
// challenge. A token bound to a DPoP key (cnf) is refused whatever the
// configuration when it comes as a Bearer token or a cookie (§7.2), and
// so is a token whose cnf is not a DPoP binding.
//
// With a fingerprint cookie configured (Config.FingerprintCookie), every
// request, cache hits included, must also carry the cookie whose hex
// SHA-256 is the token's fgp claim, and a token without fgp is refused
// unless AllowUnboundTokens (tokens checked by introspection carry no fgp):
// 401 invalid_token, "token fingerprint missing or wrong".
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	realm := a.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	if err := checkRealm(realm); err != nil {
		panic(err)
	}
	fgpCookie, allowUnbound := a.FingerprintCookie, a.AllowUnboundTokens
	if fgpCookie == "" && a.Verifier != nil {
		fgpCookie, allowUnbound = a.Verifier.cfg.FingerprintCookie, a.Verifier.cfg.AllowUnboundTokens
	}
	if err := checkFingerprintConfig(fgpCookie, a.CookieName, allowUnbound); err != nil {
		panic(err)
	}
	skipProof := a.Verifier != nil && a.Verifier.cfg.SkipDPoPProofCheck
	dp, external := a.DPoP, a.ExternalURL
	if dp == nil && a.Verifier != nil {
		dp, external = a.Verifier.cfg.DPoP, a.Verifier.cfg.ExternalURL
	}
	if dp == nil && a.Introspector != nil {
		dp, external = a.Introspector.cfg.DPoP, a.Introspector.cfg.ExternalURL
	}
	external, err := checkExternalURL("ExternalURL", external)
	if err != nil {
		panic(err)
	}
	ch := challenger{realm: realm}
	if dp != nil {
		ch.algs = dp.Algorithms()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var raw, proof string
		var isDPoP bool
		var err error
		if dp != nil {
			raw, proof, isDPoP, err = dpopCredentials(r)
			if isDPoP && err != nil {
				var ep errProof
				if errors.As(err, &ep) {
					ch.dpop(w, http.StatusUnauthorized, "invalid_dpop_proof", string(ep), "")
					return
				}
				challenge(w, http.StatusBadRequest, realm, "invalid_request", err.Error(), "")
				return
			}
		}
		if !isDPoP {
			raw, err = requestToken(r, a.CookieName)
			if err != nil {
				challenge(w, http.StatusBadRequest, realm, "invalid_request", err.Error(), "")
				return
			}
			if raw == "" {
				// §3.1: no error code when the request carries no token;
				// RFC 9449 §7.1: one challenge per scheme accepted.
				ch.none(w)
				return
			}
		}
		refuse := func(desc string) {
			if isDPoP {
				ch.dpop(w, http.StatusUnauthorized, "invalid_token", desc, "")
				return
			}
			challenge(w, http.StatusUnauthorized, realm, "invalid_token", desc, "")
		}
		c, err := a.Authenticate(r.Context(), raw)
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				unavailable(w)
				return
			}
			refuse(describe(err))
			return
		}
		jkt, err := c.BoundKey()
		switch {
		case err != nil:
			refuse(describe(err))
			return
		case isDPoP && jkt == "":
			refuse(describe(ErrNotDPoPBound))
			return
		case isDPoP:
			_, err := dp.Check(r.Context(), proof, dpop.Request{Method: r.Method, URL: requestURL(r, external), AccessToken: raw, JKT: jkt})
			switch {
			case err == nil:
			case errors.Is(err, dpop.ErrReplayUnavailable):
				unavailable(w)
				return
			case errors.Is(err, dpop.ErrNonce):
				ch.dpop(w, http.StatusUnauthorized, "use_dpop_nonce", describeProof(err), dp.Nonce())
				return
			case errors.Is(err, dpop.ErrKeyBinding):
				// RFC 9449 §7.1's example: a key that is not the token's
				// is the token's problem.
				refuse(describeProof(err))
				return
			default:
				ch.dpop(w, http.StatusUnauthorized, "invalid_dpop_proof", describeProof(err), "")
				return
			}
		case jkt != "" && skipProof:
			// A gateway in front checked the proof (Config.SkipDPoPProofCheck).
		case jkt != "":
			// RFC 9449 §7.2: a bound token without its proof is refused.
			if dp != nil {
				ch.dpop(w, http.StatusUnauthorized, "invalid_token", "the token is bound to a DPoP key; send it with the DPoP scheme and a proof", "")
				return
			}
			refuse(describe(ErrDPoPBound))
			return
		}
		if fgpCookie != "" {
			// security invariant 8: checked on every request, never cached.
			if err := checkBinding(c, r, fgpCookie, allowUnbound); err != nil {
				refuse(describe(err))
				return
			}
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, &requestAuth{claims: c, realm: realm})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	http.Error(w, "token check unavailable, retry later", http.StatusServiceUnavailable)
}

// RequireScope returns middleware that lets a request through only if its
// verified claims carry every one of scopes; otherwise 403
// insufficient_scope naming them (RFC 6750 §3.1). It goes after
// Middleware; without claims in the context it answers 401. It is checked
// on every request against that request's own claims, cache hits included.
// It panics on a scope that is not a valid scope-token (RFC 6749 §3.3).
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	if len(scopes) == 0 {
		panic("verify: RequireScope needs a scope")
	}
	for _, s := range scopes {
		if s == "" || strings.Contains(s, " ") || !isQText(s) {
			panic(fmt.Sprintf("verify: RequireScope: %q is not a scope-token (RFC 6749 §3.3)", s))
		}
	}
	want := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ra, ok := r.Context().Value(ctxKey{}).(*requestAuth)
			if !ok || ra.claims == nil {
				challenge(w, http.StatusUnauthorized, DefaultRealm, "", "", "")
				return
			}
			for _, s := range scopes {
				if !ra.claims.HasScope(s) {
					challenge(w, http.StatusForbidden, ra.realm, "insufficient_scope", "the token lacks a required scope", want)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// errRequest is a malformed request (RFC 6750 §3.1 invalid_request); its
// text is sent as error_description, so it holds only qtext.
type errRequest = oauth.BearerError

// BearerToken returns the bearer token of r's Authorization header
// (RFC 6750 §2.1), "" when there is none or it uses another scheme. A token
// in the query string, a second Authorization header (two parsers could
// read them differently) and a malformed Bearer value are errors, to be
// answered 400 invalid_request (RFC 6750 §3.1). The middleware uses it;
// so can handlers and proxies that do their own authentication.
func BearerToken(r *http.Request) (string, error) { return requestToken(r, "") }

// requestToken returns the bearer token of r, "" when there is none.
func requestToken(r *http.Request, cookieName string) (string, error) {
	if q := r.URL.RawQuery; q != "" && strings.Contains(q, "access_token") && r.URL.Query().Has("access_token") {
		return "", errRequest("tokens in the query string are not accepted; use the Authorization header")
	}
	raw, err := oauth.BearerToken(r.Header)
	if err != nil || raw != "" {
		return raw, err
	}
	// No Authorization header, or another scheme (Basic, DPoP, ...): not ours.
	if cookieName != "" {
		if ck, err := r.Cookie(cookieName); err == nil && ck.Value != "" {
			if !oauth.IsB64Token(ck.Value) {
				return "", errRequest("the token cookie is malformed")
			}
			return ck.Value, nil
		}
	}
	return "", nil
}

// describe turns a verification error into an error_description: short,
// qtext only, and saying what was wrong without echoing the token.
func describe(err error) string {
	for _, d := range []struct {
		err  error
		text string
	}{
		{token.ErrExpired, "the token expired"},
		{token.ErrNotYetValid, "the token is not valid yet"},
		{token.ErrIssuedInFuture, "the token is issued in the future"},
		{token.ErrAudience, "the token is not for this audience"},
		{token.ErrIssuer, "the token is from another issuer"},
		{token.ErrType, "the token is not an access token"},
		{token.ErrSignature, "the token signature is invalid"},
		{token.ErrAlgorithm, "the token algorithm is not allowed"},
		{token.ErrHeader, "the token header is not allowed"},
		{token.ErrUnknownKey, "the token key is unknown"},
		{ErrRevoked, "the token was revoked"},
		{ErrInactive, "the token is not active"},
		{ErrMissingClaim, "the token lacks a required claim"},
		{ErrFingerprint, "token fingerprint missing or wrong"},
		{ErrNotEncrypted, "the token must be encrypted"},
		{ErrDecrypt, "the token cannot be decrypted"},
		{ErrDPoPBound, "the token is bound to a DPoP key, which this service does not accept"},
		{ErrNotDPoPBound, "the token is not bound to a DPoP key"},
		{ErrConfirmation, "the token is bound in a way this service cannot check"},
		{token.ErrMalformed, "the token is malformed"},
	} {
		if errors.Is(err, d.err) {
			return d.text
		}
	}
	return "the token is invalid"
}

// challenge answers with a Bearer WWW-Authenticate (RFC 6750 §3) and a
// JSON body with the same error and description.
func challenge(w http.ResponseWriter, status int, realm, code, desc, scope string) {
	h := w.Header()
	h.Set("WWW-Authenticate", challengeValue("Bearer", realm, code, desc, "scope", scope))
	writeChallenge(w, status, code, desc)
}

// challenger writes the challenges of a middleware: Bearer, and DPoP
// with algs when DPoP is accepted (algs not empty).
type challenger struct {
	realm, algs string
}

// none answers a request without a token: a challenge per scheme.
func (c challenger) none(w http.ResponseWriter) {
	h := w.Header()
	h.Set("WWW-Authenticate", challengeValue("Bearer", c.realm, "", "", "", ""))
	if c.algs != "" {
		h.Add("WWW-Authenticate", challengeValue(dpop.Scheme, c.realm, "", "", "algs", c.algs))
	}
	writeChallenge(w, http.StatusUnauthorized, "", "")
}

// dpop answers with a DPoP challenge (RFC 9449 §7.1) and, for
// use_dpop_nonce, the nonce to use (§9).
func (c challenger) dpop(w http.ResponseWriter, status int, code, desc, nonce string) {
	h := w.Header()
	h.Set("WWW-Authenticate", challengeValue(dpop.Scheme, c.realm, code, desc, "algs", c.algs))
	if nonce != "" {
		h.Set(dpop.NonceHeader, nonce)
	}
	writeChallenge(w, status, code, desc)
}

// challengeValue is scheme realm="..."[, error="..."][,
// error_description="..."][, name="value"]; every value is qtext.
func challengeValue(scheme, realm, code, desc, name, value string) string {
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(` realm="`)
	b.WriteString(realm)
	b.WriteByte('"')
	if code != "" {
		b.WriteString(`, error="`)
		b.WriteString(code)
		b.WriteByte('"')
	}
	if desc != "" {
		b.WriteString(`, error_description="`)
		b.WriteString(desc)
		b.WriteByte('"')
	}
	if value != "" {
		b.WriteString(`, `)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
	}
	return b.String()
}

func writeChallenge(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if code == "" {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`+"\n", code, desc)
}

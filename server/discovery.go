package server

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// metadata serves RFC 8414 §3 and OIDC Discovery §4 from one document.
// Only what is implemented is advertised: a client library that reads it
// must not be sent to an endpoint that does not exist.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) error {
	authMethods := []string{string(latch.AuthSecretBasic), string(latch.AuthSecretPost), string(latch.AuthPrivateKeyJWT)}
	algs := make([]string, 0, len(assertionAlgorithms))
	for _, a := range assertionAlgorithms {
		algs = append(algs, string(a))
	}
	reg, err := s.tok.Registrations(r.Context())
	if err != nil {
		return err
	}
	grants := slices.DeleteFunc(slices.Clone(grantTypes), func(g string) bool {
		// RFC 9700 §2.4: the password grant MUST NOT be used; it is
		// advertised only while the operator has registered a client for it.
		return g == latch.GrantPassword && !reg.Password
	})
	noRequestURI := false
	md := oauth.Metadata{
		Issuer:                        s.cfg.Issuer,
		TokenEndpoint:                 s.endpoint("/oauth2/token"),
		JWKSURI:                       s.endpoint("/.well-known/jwks.json"),
		RevocationEndpoint:            s.endpoint("/oauth2/revoke"),
		IntrospectionEndpoint:         s.endpoint("/oauth2/introspect"),
		AuthorizationEndpoint:         s.endpoint("/oauth2/authorize"),
		UserinfoEndpoint:              s.endpoint("/userinfo"),
		EndSessionEndpoint:            s.endpoint("/oauth2/logout"),
		OpaqueTokenKeysEndpoint:       s.endpoint("/oauth2/opaque-token-keys"),
		ScopesSupported:               latch.OIDCScopes,
		ResponseTypesSupported:        []string{"code"},
		ResponseModesSupported:        []string{"query"},
		GrantTypesSupported:           grants,
		CodeChallengeMethodsSupported: []string{"S256"},
		SubjectTypesSupported:         []string{"public"},
		ClaimsSupported: append([]string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "azp",
			"roles", "groups"}, identityClaimNames...),
		RequestURIParameterSupported:               &noRequestURI,
		AuthorizationResponseIssParameterSupported: true,
		// none: public clients redeem codes and refresh with PKCE and no
		// secret (RFC 7591 §2). Introspection stays confidential-only.
		TokenEndpointAuthMethodsSupported:          append(append([]string(nil), authMethods...), string(latch.AuthNone)),
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		RevocationEndpointAuthMethodsSupported:     append(authMethods, string(latch.AuthNone)),
		// Bearer: an access token of the caller instead of client
		// authentication (RFC 7662 §2.1; RFC 8414 §2 admits access token
		// types here).
		IntrospectionEndpointAuthMethodsSupported: append(append([]string(nil), authMethods...), "Bearer"),

		RevocationEndpointAuthSigningAlgValuesSupported:    algs,
		IntrospectionEndpointAuthSigningAlgValuesSupported: algs,
	}
	for _, a := range s.cfg.DPoPAlgorithms {
		md.DPoPSigningAlgValuesSupported = append(md.DPoPSigningAlgValuesSupported, string(a))
	}
	// Per client (--require-par), not for every client: false here.
	md.PushedAuthorizationRequestEndpoint = s.endpoint(parPath)
	// RFC 9701 responses are signed with the current signing key; a key
	// rotation that changes the algorithm changes this too.
	if _, alg, _, err := s.keys.Signing(); err == nil {
		md.IntrospectionSigningAlgValuesSupported = []string{string(alg)}
	}
	// Every algorithm a key signs with now can sign a client's ID tokens
	// (id_token_signed_response_alg), the default one first.
	for _, a := range s.keys.SigningAlgorithms() {
		md.IDTokenSigningAlgValuesSupported = append(md.IDTokenSigningAlgValuesSupported, string(a))
	}
	w.Header().Set("Content-Type", "application/json")
	// Metadata changes only with a new release or configuration.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	return writeJSONBody(w, md)
}

// jwks serves the published signing keys (RFC 7517 §5) with the
// Cache-Control the key manager computed from the pre-publication period.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) error {
	body, cacheControl := s.keys.JWKS()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", cacheControl)
	_, err := w.Write(body)
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeJSONBody(w, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the store answers and a key can sign.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	status := map[string]string{"status": "ok", "store": "ok", "keys": "ok"}
	code := http.StatusOK
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(r.Context(), "readiness: store does not answer", "err", err)
		status["store"], status["status"], code = "unavailable", "unavailable", http.StatusServiceUnavailable
	}
	if _, _, _, err := s.keys.Signing(); err != nil {
		status["keys"], status["status"], code = "no signing key", "unavailable", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return writeJSONBody(w, status)
}

package bff

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/token"
)

// issuer is the BFF's client of the authorization server: discovery, the
// token and revocation endpoints, and the keys that sign ID tokens.
type issuer struct {
	cfg  *Config
	md   metadata
	ks   *keySet
	dpop *dpopClient // nil without Config.DPoP
}

// metadata is the part of OIDC Discovery §3 / RFC 8414 §2 the BFF reads.
type metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	// IssParameter is RFC 9207 §3: when true, a callback without iss is
	// refused.
	IssParameter bool `json:"authorization_response_iss_parameter_supported"`
	// DPoPAlgorithms is RFC 9449 §5.1: the proof algorithms the token
	// endpoint accepts; none when it does not support DPoP.
	DPoPAlgorithms []string `json:"dpop_signing_alg_values_supported"`
}

func discover(ctx context.Context, cfg *Config) (*issuer, error) {
	iss := &issuer{cfg: cfg}
	u := strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
	body, err := iss.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("bff: discover %s: %w", cfg.Issuer, err)
	}
	if err := json.Unmarshal(body, &iss.md); err != nil {
		return nil, fmt.Errorf("bff: discover %s: metadata is not JSON: %w", cfg.Issuer, err)
	}
	md := &iss.md
	// OIDC Discovery §4.3: an attacker serving metadata elsewhere must not
	// get to name its own endpoints and keys.
	if md.Issuer != cfg.Issuer {
		return nil, fmt.Errorf("bff: discover %s: metadata names issuer %q; Issuer must be exactly the server's issuer URL", cfg.Issuer, md.Issuer)
	}
	for _, e := range []struct{ name, u string }{
		{"authorization_endpoint", md.AuthorizationEndpoint},
		{"token_endpoint", md.TokenEndpoint},
		{"jwks_uri", md.JWKSURI},
	} {
		if err := checkURL("metadata "+e.name, e.u, cfg.InsecureAllowHTTP); err != nil {
			return nil, err
		}
	}
	for _, e := range []struct{ name, u string }{
		{"revocation_endpoint", md.RevocationEndpoint},
		{"end_session_endpoint", md.EndSessionEndpoint},
	} {
		if e.u != "" {
			if err := checkURL("metadata "+e.name, e.u, cfg.InsecureAllowHTTP); err != nil {
				return nil, err
			}
		}
	}
	if len(md.CodeChallengeMethods) > 0 && !slices.Contains(md.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("bff: %s does not support PKCE S256 (code_challenge_methods_supported %v)", cfg.Issuer, md.CodeChallengeMethods)
	}
	iss.ks = &keySet{iss: iss, uri: md.JWKSURI, now: cfg.Now}
	if err := iss.ks.refresh(ctx); err != nil {
		return nil, fmt.Errorf("bff: fetch the keys of %s: %w", cfg.Issuer, err)
	}
	return iss, nil
}

// do sends req and reads its body, bounded in time and size.
func (iss *issuer) do(req *http.Request) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), iss.cfg.Timeout)
	defer cancel()
	resp, err := iss.cfg.HTTPClient.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, iss.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Redacted(), err)
	}
	if int64(len(body)) > iss.cfg.MaxResponseBytes {
		return nil, nil, fmt.Errorf("%s %s: answer exceeds %d bytes", req.Method, req.URL.Redacted(), iss.cfg.MaxResponseBytes)
	}
	return resp, body, nil
}

func (iss *issuer) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, body, err := iss.do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return body, nil
}

// post sends an authenticated form (client_secret_basic, RFC 6749 §2.3.1:
// id and secret form-encoded before base64), with a DPoP proof when
// proof is set.
func (iss *issuer) post(ctx context.Context, endpoint string, form url.Values, proof string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	if proof != "" {
		req.Header.Set(dpop.HeaderName, proof)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(iss.cfg.ClientID), url.QueryEscape(iss.cfg.ClientSecret))
	return iss.do(req)
}

// tokenResponse is RFC 6749 §5.1 with the OIDC id_token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
}

// oauthError is an RFC 6749 §5.2 error answer of the token endpoint.
type oauthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("token endpoint: %s (%d): %s", e.Code, e.Status, e.Description)
	}
	return fmt.Sprintf("token endpoint: %s (%d)", e.Code, e.Status)
}

// isInvalidGrant reports whether err is the token endpoint refusing the
// grant itself (RFC 6749 §5.2 invalid_grant): a revoked, expired, reused
// or foreign refresh token. It is final, unlike a network failure.
func isInvalidGrant(err error) bool {
	var oe *oauthError
	return errors.As(err, &oe) && oe.Code == "invalid_grant"
}

// token calls the token endpoint with form and checks the answer. With
// DPoP, the request carries a proof (RFC 9449 §5) with the server's last
// nonce, and is sent once more with a new nonce when the server answers
// use_dpop_nonce (§8); the access token must then come bound (token_type
// DPoP).
func (iss *issuer) token(ctx context.Context, form url.Values) (*tokenResponse, error) {
	var resp *http.Response
	var body []byte
	for attempt := 0; ; attempt++ {
		var proof, nonce string
		if iss.dpop != nil {
			nonce = iss.dpop.issuerNonce.get()
			var err error
			if proof, err = iss.dpop.prover.Proof(http.MethodPost, iss.md.TokenEndpoint, "", nonce); err != nil {
				return nil, err
			}
		}
		var err error
		resp, body, err = iss.post(ctx, iss.md.TokenEndpoint, form, proof)
		if err != nil {
			return nil, err
		}
		if iss.dpop == nil || resp.StatusCode == http.StatusOK {
			break
		}
		iss.dpop.issuerNonce.update(resp.Header)
		var oe oauthError
		if attempt > 0 || json.Unmarshal(body, &oe) != nil || oe.Code != "use_dpop_nonce" || iss.dpop.issuerNonce.get() == nonce {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		oe := &oauthError{Status: resp.StatusCode}
		if json.Unmarshal(body, oe) != nil || oe.Code == "" {
			oe.Code = "server_error"
		}
		return nil, oe
	}
	if iss.dpop != nil {
		iss.dpop.issuerNonce.update(resp.Header)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("token endpoint: answer is not JSON: %w", err)
	}
	want := "Bearer"
	if iss.dpop != nil {
		want = "DPoP"
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token endpoint: answer without an access_token")
	}
	if !strings.EqualFold(tr.TokenType, want) {
		if want == "DPoP" {
			// Forwarding it as a Bearer token would drop the binding the
			// operator asked for without a word.
			return nil, fmt.Errorf("token endpoint: token_type %q, not DPoP: the access token is not bound to the BFF's key; the server ignored the DPoP proof", tr.TokenType)
		}
		return nil, fmt.Errorf("token endpoint: answer without a Bearer access_token (token_type %q)", tr.TokenType)
	}
	return &tr, nil
}

// revoke revokes tok at the revocation endpoint (RFC 7009 §2.1); for a
// refresh token, latch revokes its whole family.
func (iss *issuer) revoke(ctx context.Context, tok, hint string) error {
	if iss.md.RevocationEndpoint == "" {
		return errors.New("the issuer publishes no revocation_endpoint")
	}
	resp, body, err := iss.post(ctx, iss.md.RevocationEndpoint, url.Values{"token": {tok}, "token_type_hint": {hint}}, "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint: status %d: %.200s", resp.StatusCode, body)
	}
	return nil
}

// idClaims are the checked claims of an ID token.
type idClaims struct {
	token.Claims
}

// verifyIDToken checks an ID token as OIDC Core §3.1.3.7 asks: signature
// with the issuer's published keys, the algorithm pinned per key (the
// token's alg must be the key's); typ JWT; iss exactly the issuer; aud containing
// the client id, and azp, when present or when aud has other members,
// equal to it; exp, iat with a 30s leeway; and the nonce of this login.
// It came straight from the token endpoint over TLS with client
// authentication, but it is checked all the same: it decides who is
// logged in.
func (iss *issuer) verifyIDToken(ctx context.Context, raw, nonce string) (*idClaims, error) {
	c, err := token.Verify(ctx, raw, iss.ks, token.VerifyOptions{
		// latch's ID tokens are typ JWT; an access token (at+jwt) is
		// refused here as an ID token is refused as an access token
		// (security invariant 2).
		Type:       "JWT",
		Issuer:     iss.cfg.Issuer,
		Audience:   iss.cfg.ClientID,
		Algorithms: latch.Algorithms,
		Leeway:     30 * time.Second,
		Now:        iss.cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("ID token: %w", err)
	}
	azp, _ := c.Extra["azp"].(string)
	if (len(c.Audience) > 1 || azp != "") && azp != iss.cfg.ClientID {
		return nil, fmt.Errorf("ID token: azp %q is not this client", azp)
	}
	if got, _ := c.Extra["nonce"].(string); got == "" || !equalSecret(got, nonce) {
		return nil, errors.New("ID token: nonce does not match this login")
	}
	if c.Subject == "" {
		return nil, errors.New("ID token: no sub")
	}
	return &idClaims{Claims: *c}, nil
}

// keySet is the issuer's JWKS for token.Verify: fetched at start-up, and
// again when a token names an unknown kid (a key rotation), at most every
// 30 seconds.
type keySet struct {
	iss *issuer
	uri string
	now func() time.Time

	mu      sync.Mutex
	keys    map[string]jwk
	fetched time.Time
}

type jwk struct {
	key crypto.PublicKey
	alg latch.Algorithm
}

const keyRefetchInterval = 30 * time.Second

// Key implements token.KeySet.
func (k *keySet) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key.key, key.alg, nil
	}
	if k.now().Sub(k.fetched) >= keyRefetchInterval {
		if err := k.refreshLocked(ctx); err != nil {
			return nil, "", fmt.Errorf("%w (refetching the JWKS failed: %v)", token.ErrUnknownKey, err)
		}
		if key, ok := k.keys[kid]; ok {
			return key.key, key.alg, nil
		}
	}
	return nil, "", token.ErrUnknownKey
}

func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refreshLocked(ctx)
}

// refreshLocked replaces the keys with the JWKS's signing keys whose alg is
// one latch implements. A key without alg is skipped: the key, not the
// token, must say which algorithm it is for (RFC 8725 §3.1).
func (k *keySet) refreshLocked(ctx context.Context) error {
	k.fetched = k.now()
	body, err := k.iss.get(ctx, k.uri)
	if err != nil {
		return err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("JWKS at %s: %w", k.uri, err)
	}
	keys := make(map[string]jwk, len(set.Keys))
	for _, key := range set.Keys {
		alg := latch.Algorithm(key.Algorithm)
		if key.KeyID == "" || !key.IsPublic() || (key.Use != "" && key.Use != "sig") || !slices.Contains(latch.Algorithms, alg) {
			continue
		}
		keys[key.KeyID] = jwk{key: key.Key, alg: alg}
	}
	if len(keys) == 0 {
		return fmt.Errorf("JWKS at %s has no usable signing key", k.uri)
	}
	k.keys = keys
	return nil
}

// equalSecret compares two secrets in constant time (security invariant 9).
func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

package registry

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// ClientSpec is what an operator supplies to register a client, from CLI
// flags or admin API JSON. Field names follow RFC 7591 §2 where one exists.
type ClientSpec struct {
	ID                string          `json:"client_id,omitempty"` // generated when empty
	Name              string          `json:"client_name,omitempty"`
	AuthMethod        string          `json:"token_endpoint_auth_method,omitempty"` // default client_secret_basic
	GrantTypes        []string        `json:"grant_types,omitempty"`                // default client_credentials
	Scope             string          `json:"scope,omitempty"`                      // space-delimited
	Audiences         []string        `json:"audiences,omitempty"`
	RedirectURIs      []string        `json:"redirect_uris,omitempty"`
	JWKS              json.RawMessage `json:"jwks,omitempty"`                // public keys, for private_key_jwt
	AccessTokenFormat string          `json:"access_token_format,omitempty"` // jwt (default) or opaque
	AccessTokenTTL    int64           `json:"access_token_ttl,omitempty"`    // seconds; 0 = server default
	RefreshTokenTTL   int64           `json:"refresh_token_ttl,omitempty"`   // seconds; 0 = server default
	// TokenFingerprint binds JWT access tokens to a __Host- cookie (fgp claim).
	TokenFingerprint bool `json:"token_fingerprint,omitempty"`
	// FirstParty clients skip the consent page (the operator's own apps).
	FirstParty bool `json:"first_party,omitempty"`
	// AccessTokenEncryptionKey is the resource server's public EC JWK (one
	// key, not a set): JWT access tokens are then encrypted to it
	// (ECDH-ES+A256KW, A256GCM) so the client cannot read their claims.
	AccessTokenEncryptionKey json.RawMessage `json:"access_token_encryption_key,omitempty"`
	// DPoP is required or optional (the default): a required client's
	// token requests without a DPoP proof are refused (RFC 9449 §5.2).
	DPoP string `json:"dpop,omitempty"`
	// RequirePAR: the client must push its authorization requests (RFC
	// 9126 §6).
	RequirePAR bool `json:"require_pushed_authorization_requests,omitempty"`
	// IDTokenAlg is the alg of the client's ID tokens (OIDC Registration
	// §2); empty: the server's --id-token-alg.
	IDTokenAlg string `json:"id_token_signed_response_alg,omitempty"`
	// WebOrigins are the origins (scheme://host[:port]) of a browser app
	// that calls the token, revocation and userinfo endpoints itself:
	// those answer its CORS requests (docs/cors.md).
	WebOrigins []string `json:"web_origins,omitempty"`
}

// ClientView is a client as shown by the CLI and the admin API. The secret
// appears only in the answer to create and rotate-secret: it is not stored.
type ClientView struct {
	ID                string          `json:"client_id"`
	Secret            string          `json:"client_secret,omitempty"`
	Name              string          `json:"client_name,omitempty"`
	AuthMethod        string          `json:"token_endpoint_auth_method"`
	GrantTypes        []string        `json:"grant_types"`
	Scope             string          `json:"scope"`
	Audiences         []string        `json:"audiences"`
	RedirectURIs      []string        `json:"redirect_uris,omitempty"`
	JWKS              json.RawMessage `json:"jwks,omitempty"`
	AccessTokenFormat string          `json:"access_token_format"`
	AccessTokenTTL    int64           `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL   int64           `json:"refresh_token_ttl,omitempty"`
	TokenFingerprint  bool            `json:"token_fingerprint,omitempty"`
	FirstParty        bool            `json:"first_party,omitempty"`
	// AccessTokenEncryptionKey is public: the key tokens are encrypted to.
	AccessTokenEncryptionKey json.RawMessage `json:"access_token_encryption_key,omitempty"`
	// DPoP is required or optional; DPoPBound says required as RFC 9449
	// §5.2's client metadata does.
	DPoP       string    `json:"dpop"`
	DPoPBound  bool      `json:"dpop_bound_access_tokens"`
	RequirePAR bool      `json:"require_pushed_authorization_requests"`
	IDTokenAlg string    `json:"id_token_signed_response_alg,omitempty"`
	WebOrigins []string  `json:"web_origins,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Warnings say what the registration allows that the operator may
	// not expect; only in the answer to create.
	Warnings []string `json:"warnings,omitempty"`
}

// ViewOf returns the public view of c, without any secret.
func ViewOf(c *latch.Client) *ClientView {
	v := &ClientView{
		ID: c.ID, Name: c.Name, AuthMethod: string(c.AuthMethod), GrantTypes: nonNil(c.GrantTypes),
		Scope: joinScope(c.Scopes), Audiences: nonNil(c.Audiences), RedirectURIs: c.RedirectURIs,
		AccessTokenFormat: string(c.AccessTokenFormat),
		AccessTokenTTL:    int64(c.AccessTokenTTL / time.Second), RefreshTokenTTL: int64(c.RefreshTokenTTL / time.Second),
		TokenFingerprint: c.TokenFingerprint, FirstParty: c.FirstParty, IDTokenAlg: string(c.IDTokenAlgorithm),
		DPoP: string(cmp.Or(c.DPoP, latch.DPoPOptional)), DPoPBound: c.RequiresDPoP(), RequirePAR: c.RequirePAR,
		WebOrigins: c.WebOrigins,
		CreatedAt:  c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
	if len(c.JWKS) > 0 {
		v.JWKS = json.RawMessage(c.JWKS)
	}
	if len(c.AccessTokenEncryptionKey) > 0 {
		v.AccessTokenEncryptionKey = json.RawMessage(c.AccessTokenEncryptionKey)
	}
	return v
}

// Clients registers and manages clients. The CLI and the admin API both use
// it, so a client created either way obeys the same rules.
type Clients struct {
	Store             latch.ClientStore
	MaxAccessTokenTTL time.Duration // 0: 24h
	Now               func() time.Time
	Rand              io.Reader
}

// maxWebOrigins bounds a client's web origins: an app is served from a
// handful of places (production, staging, a developer's loopback port).
const maxWebOrigins = 32

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

var knownGrants = []string{latch.GrantClientCredentials, latch.GrantAuthorizationCode, latch.GrantRefreshToken,
	latch.GrantTokenExchange, latch.GrantPassword}

// Build validates spec and returns the client it describes, with its
// secret (empty for clients without one).
func (m *Clients) Build(spec ClientSpec) (*latch.Client, string, error) {
	bad := func(format string, args ...any) error {
		return latch.Errorf(latch.EINVALID, "client: "+format, args...)
	}
	c := &latch.Client{ID: spec.ID, Name: spec.Name, AuthMethod: latch.AuthMethod(spec.AuthMethod),
		GrantTypes: spec.GrantTypes, Audiences: spec.Audiences, RedirectURIs: spec.RedirectURIs,
		AccessTokenFormat: latch.TokenFormat(spec.AccessTokenFormat),
		AccessTokenTTL:    time.Duration(spec.AccessTokenTTL) * time.Second, RefreshTokenTTL: time.Duration(spec.RefreshTokenTTL) * time.Second,
		TokenFingerprint: spec.TokenFingerprint, FirstParty: spec.FirstParty,
		DPoP: latch.DPoPPolicy(spec.DPoP), RequirePAR: spec.RequirePAR,
		IDTokenAlgorithm: latch.Algorithm(spec.IDTokenAlg)}
	switch c.DPoP {
	case "":
		c.DPoP = latch.DPoPOptional
	case latch.DPoPOptional, latch.DPoPRequired:
	default:
		return nil, "", bad("dpop %q must be required or optional", spec.DPoP)
	}
	if c.RequirePAR && !c.AllowsGrant(latch.GrantAuthorizationCode) {
		return nil, "", bad("require-par is for clients of the authorization_code grant: only they send authorization requests")
	}
	if c.IDTokenAlgorithm != "" && !slices.Contains(latch.Algorithms, c.IDTokenAlgorithm) {
		return nil, "", bad("id_token_signed_response_alg %.20q: use one of %v", spec.IDTokenAlg, latch.Algorithms)
	}
	if c.ID == "" {
		id, err := newRecordID(m.rand())
		if err != nil {
			return nil, "", err
		}
		c.ID = id
	} else if !clientIDPattern.MatchString(c.ID) {
		return nil, "", bad("id %q must be 1 to 128 of A-Z a-z 0-9 . _ ~ -", c.ID)
	}
	if len(c.Name) > 200 {
		return nil, "", bad("name is longer than 200 characters")
	}
	if c.AuthMethod == "" {
		c.AuthMethod = latch.AuthSecretBasic
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{latch.GrantClientCredentials}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return nil, "", bad("unknown grant type %q (known: %v)", g, knownGrants)
		}
	}
	scopes, oerr := oauth.SplitScope(spec.Scope)
	if oerr != nil {
		return nil, "", bad("scope: %s", oerr.Description)
	}
	c.Scopes = scopes
	for _, a := range c.Audiences {
		if a == "" || len(a) > 512 {
			return nil, "", bad("audiences must be non-empty and at most 512 characters")
		}
	}
	for _, u := range c.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, "", bad("%v", err)
		}
	}
	if len(spec.WebOrigins) > maxWebOrigins {
		return nil, "", bad("more than %d web origins", maxWebOrigins)
	}
	for _, o := range spec.WebOrigins {
		canon, err := oauth.WebOrigin(o)
		if err != nil {
			return nil, "", bad("%v", err)
		}
		if !slices.Contains(c.WebOrigins, canon) {
			c.WebOrigins = append(c.WebOrigins, canon)
		}
	}
	if c.FirstParty && c.AuthMethod == latch.AuthNone {
		// A public client proves nothing at the token endpoint; without a
		// consent page, any app that can receive its redirect (a custom
		// scheme, a loopback port) would get codes silently (RFC 6749
		// §10.2, RFC 8252 §8.6). Only https redirects belong to one owner.
		for _, u := range c.RedirectURIs {
			if !strings.HasPrefix(u, "https://") {
				return nil, "", bad("a first-party public client (auth method none) may only have https redirect URIs: %q could be received by another app, which would get codes without a consent page", u)
			}
		}
	}
	if c.AllowsGrant(latch.GrantPassword) && !c.FirstParty {
		// The client sees the user's password: only the operator's own
		// apps may, and only when they say so (RFC 9700 §2.4).
		return nil, "", bad("the password grant is only for first-party clients (--first-party)")
	}
	if c.AllowsGrant(latch.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return nil, "", bad("the authorization_code grant needs at least one redirect URI (--redirect-uri)")
	}
	switch c.AccessTokenFormat {
	case "":
		c.AccessTokenFormat = latch.FormatJWT
	case latch.FormatJWT, latch.FormatOpaque:
	default:
		return nil, "", bad("access token format %q must be jwt or opaque", spec.AccessTokenFormat)
	}
	if c.TokenFingerprint && c.AccessTokenFormat != latch.FormatJWT {
		// An opaque token is checked by introspection and has no claim
		// to bind the cookie's hash to.
		return nil, "", bad("token fingerprint needs JWT access tokens; an opaque token has no fgp claim to bind the cookie to")
	}
	if len(spec.AccessTokenEncryptionKey) > 0 {
		if c.AccessTokenFormat != latch.FormatJWT {
			// An opaque token has no claims to hide: only the server,
			// by introspection, can say what it stands for.
			return nil, "", bad("an access token encryption key needs JWT access tokens; opaque tokens carry no claims to encrypt")
		}
		key, err := authority.CheckEncryptionKey(spec.AccessTokenEncryptionKey)
		if err != nil {
			return nil, "", bad("%v", err)
		}
		c.AccessTokenEncryptionKey = key
	}
	maxTTL := m.MaxAccessTokenTTL
	if maxTTL == 0 {
		maxTTL = 24 * time.Hour
	}
	if c.AccessTokenTTL < 0 || c.AccessTokenTTL > maxTTL || (c.AccessTokenTTL > 0 && c.AccessTokenTTL < 10*time.Second) {
		return nil, "", bad("access token lifetime must be between 10s and %v (the server's maximum)", maxTTL)
	}
	if c.RefreshTokenTTL < 0 {
		return nil, "", bad("refresh token lifetime must not be negative")
	}
	var secret string
	switch c.AuthMethod {
	case latch.AuthSecretBasic, latch.AuthSecretPost:
		var err error
		if secret, err = token.NewSecret(m.rand()); err != nil {
			return nil, "", err
		}
		h := sha256.Sum256([]byte(secret))
		c.SecretHash = h[:]
	case latch.AuthPrivateKeyJWT:
		if err := checkClientJWKS(spec.JWKS); err != nil {
			return nil, "", bad("%v", err)
		}
		c.JWKS = []byte(spec.JWKS)
	case latch.AuthNone:
		if slices.Contains(c.GrantTypes, latch.GrantClientCredentials) {
			return nil, "", bad("a public client (auth method none) cannot use client_credentials")
		}
	default:
		return nil, "", bad("auth method %q must be client_secret_basic, client_secret_post, private_key_jwt or none", spec.AuthMethod)
	}
	if c.AuthMethod != latch.AuthPrivateKeyJWT && len(spec.JWKS) > 0 {
		return nil, "", bad("jwks is only for private_key_jwt clients")
	}
	// A fresh registration, whatever its ID: the tokens of a deleted
	// client of the same ID stay dead (latch.Client.RegistrationID).
	reg, err := token.NewID(m.rand())
	if err != nil {
		return nil, "", err
	}
	c.RegistrationID = reg
	now := m.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	return c, secret, nil
}

// checkClientJWKS accepts a JWK Set of public signing keys only: a private
// key registered here would be a secret stored in the clear.
func checkClientJWKS(raw json.RawMessage) error {
	if len(raw) == 0 {
		return fmt.Errorf("private_key_jwt needs the client's public keys (jwks)")
	}
	if len(raw) > 64<<10 {
		return fmt.Errorf("jwks is larger than 64 KiB")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("jwks is not a JWK Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("jwks has no keys")
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return fmt.Errorf("jwks must hold valid public keys only (key %q)", k.KeyID)
		}
	}
	return nil
}

// Create registers a client and returns its view with the one-time secret.
func (m *Clients) Create(ctx context.Context, spec ClientSpec) (*ClientView, error) {
	c, secret, err := m.Build(spec)
	if err != nil {
		return nil, err
	}
	// A client_credentials token's sub is the client ID: a client named
	// like a user would get tokens that speak for the user (RFC 9700
	// §4.15). User IDs are random, so only a chosen client ID can clash.
	if users, ok := m.Store.(latch.UserStore); ok {
		if _, err := users.User(ctx, c.ID); err == nil {
			return nil, latch.Errorf(latch.EINVALID, "client: id %q is the id of a user; choose another", c.ID)
		} else if !errors.Is(err, latch.ErrNotFound) {
			return nil, err
		}
	}
	if err := m.Store.CreateClient(ctx, c); err != nil {
		return nil, err
	}
	v := ViewOf(c)
	v.Secret = secret
	v.Warnings = registrationWarnings(v)
	return v, nil
}

// RotateSecret replaces a client's secret at once and returns the new one.
// The old secret stops working immediately.
func (m *Clients) RotateSecret(ctx context.Context, id string) (*ClientView, error) {
	c, err := m.Store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.AuthMethod != latch.AuthSecretBasic && c.AuthMethod != latch.AuthSecretPost {
		return nil, latch.Errorf(latch.EINVALID, "client: %q authenticates with %s and has no secret to rotate", id, c.AuthMethod)
	}
	secret, err := token.NewSecret(m.rand())
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(secret))
	c.SecretHash = h[:]
	c.UpdatedAt = m.now().UTC()
	if err := m.Store.UpdateClient(ctx, c); err != nil {
		return nil, err
	}
	v := ViewOf(c)
	v.Secret = secret
	return v, nil
}

func (m *Clients) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Clients) rand() io.Reader {
	if m.Rand == nil {
		return rand.Reader
	}
	return m.Rand
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func joinScope(s []string) string { return strings.Join(s, " ") }

// checkRedirectURI accepts the redirect URIs RFC 9700 §2.1 and RFC 8252
// allow: absolute, without a fragment (RFC 6749 §3.1.2), https, or http on
// a loopback host (RFC 8252 §7.3, native apps and development), or a
// private-use scheme with a dot, such as com.example.app:/cb (RFC 8252
// §7.1). They are compared exactly at /oauth2/authorize.
func checkRedirectURI(u string) error {
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() || p.Fragment != "" || strings.Contains(u, "#") || len(u) > 2000 {
		return fmt.Errorf("redirect URI %q must be an absolute URI without a fragment (RFC 6749 §3.1.2)", u)
	}
	switch p.Scheme {
	case "https":
		if p.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", u)
		}
	case "http":
		h := p.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("redirect URI %q: http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https", u)
		}
	default:
		if !strings.Contains(p.Scheme, ".") {
			return fmt.Errorf("redirect URI %q: a private-use scheme must be a reversed domain name such as com.example.app (RFC 8252 §7.1)", u)
		}
	}
	return nil
}

// newRecordID draws the ID of a new client or user: token.NewID, drawn
// again while it starts with "-". Operators type these IDs as command
// arguments (latch client get ID), where a leading dash reads as a flag;
// one draw in 64 would. The redraw costs no meaningful entropy.
func newRecordID(r io.Reader) (string, error) {
	for {
		id, err := token.NewID(r)
		if err != nil || !strings.HasPrefix(id, "-") {
			return id, err
		}
	}
}

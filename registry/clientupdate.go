package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/latch-auth/latch"
)

// ClientPatch changes some settings of a registered client: a field left
// out (nil) keeps its value, as in a JSON merge patch (RFC 7396). The id
// cannot change: tokens and grants name it. An empty list clears one.
type ClientPatch struct {
	Name              *string         `json:"client_name,omitempty"`
	AuthMethod        *string         `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes        *[]string       `json:"grant_types,omitempty"`
	Scope             *string         `json:"scope,omitempty"`
	Audiences         *[]string       `json:"audiences,omitempty"`
	RedirectURIs      *[]string       `json:"redirect_uris,omitempty"`
	JWKS              json.RawMessage `json:"jwks,omitempty"`
	AccessTokenFormat *string         `json:"access_token_format,omitempty"`
	AccessTokenTTL    *int64          `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL   *int64          `json:"refresh_token_ttl,omitempty"`
	TokenFingerprint  *bool           `json:"token_fingerprint,omitempty"`
	FirstParty        *bool           `json:"first_party,omitempty"`
	// AccessTokenEncryptionKey replaces the resource server's key; JSON
	// null removes it, so tokens are signed only.
	AccessTokenEncryptionKey json.RawMessage `json:"access_token_encryption_key,omitempty"`
	DPoP                     *string         `json:"dpop,omitempty"`
	RequirePAR               *bool           `json:"require_pushed_authorization_requests,omitempty"`
	// IDTokenAlg replaces the client's ID token algorithm; "" returns it
	// to the server's default.
	IDTokenAlg *string   `json:"id_token_signed_response_alg,omitempty"`
	WebOrigins *[]string `json:"web_origins,omitempty"`
}

// SpecOf returns the registration of c as the spec that would create it.
func SpecOf(c *latch.Client) ClientSpec {
	return ClientSpec{
		ID: c.ID, Name: c.Name, AuthMethod: string(c.AuthMethod),
		GrantTypes: slices.Clone(c.GrantTypes), Scope: joinScope(c.Scopes),
		Audiences: slices.Clone(c.Audiences), RedirectURIs: slices.Clone(c.RedirectURIs),
		JWKS: json.RawMessage(c.JWKS), AccessTokenFormat: string(c.AccessTokenFormat),
		AccessTokenTTL: int64(c.AccessTokenTTL / time.Second), RefreshTokenTTL: int64(c.RefreshTokenTTL / time.Second),
		TokenFingerprint: c.TokenFingerprint, FirstParty: c.FirstParty,
		AccessTokenEncryptionKey: json.RawMessage(c.AccessTokenEncryptionKey),
		DPoP:                     string(c.DPoP), RequirePAR: c.RequirePAR,
		IDTokenAlg: string(c.IDTokenAlgorithm),
		WebOrigins: slices.Clone(c.WebOrigins),
	}
}

// apply sets the fields p holds on spec.
func (p *ClientPatch) apply(spec *ClientSpec) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setList := func(dst *[]string, v *[]string) {
		if v != nil {
			*dst = slices.Clone(*v)
		}
	}
	set(&spec.Name, p.Name)
	set(&spec.AuthMethod, p.AuthMethod)
	setList(&spec.GrantTypes, p.GrantTypes)
	set(&spec.Scope, p.Scope)
	setList(&spec.Audiences, p.Audiences)
	setList(&spec.RedirectURIs, p.RedirectURIs)
	setList(&spec.WebOrigins, p.WebOrigins)
	if len(p.JWKS) > 0 {
		spec.JWKS = p.JWKS
	}
	set(&spec.AccessTokenFormat, p.AccessTokenFormat)
	set(&spec.IDTokenAlg, p.IDTokenAlg)
	if p.AccessTokenTTL != nil {
		spec.AccessTokenTTL = *p.AccessTokenTTL
	}
	if p.RefreshTokenTTL != nil {
		spec.RefreshTokenTTL = *p.RefreshTokenTTL
	}
	if p.TokenFingerprint != nil {
		spec.TokenFingerprint = *p.TokenFingerprint
	}
	if p.FirstParty != nil {
		spec.FirstParty = *p.FirstParty
	}
	set(&spec.DPoP, p.DPoP)
	if p.RequirePAR != nil {
		spec.RequirePAR = *p.RequirePAR
	}
	switch {
	case bytes.Equal(bytes.TrimSpace(p.AccessTokenEncryptionKey), []byte("null")):
		spec.AccessTokenEncryptionKey = nil
	case len(p.AccessTokenEncryptionKey) > 0:
		spec.AccessTokenEncryptionKey = p.AccessTokenEncryptionKey
	}
	if spec.AuthMethod != string(latch.AuthPrivateKeyJWT) && len(p.JWKS) == 0 {
		// Leaving private_key_jwt drops its keys rather than failing on them.
		spec.JWKS = nil
	}
}

// Update changes the registration of client id by p, under the same rules
// as Create: the patched registration is validated by Build as a new one
// would be. The secret is kept, unless the client moves to a secret-based
// auth method from one without a secret: the new secret is then in the
// answer, once. Tokens already issued keep what they carry until they
// expire; new requests see the new registration.
func (m *Clients) Update(ctx context.Context, id string, p ClientPatch) (*ClientView, error) {
	old, err := m.Store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	spec := SpecOf(old)
	p.apply(&spec)
	built, secret, err := m.Build(spec)
	if err != nil {
		return nil, err
	}
	// Start from the stored client so that whatever Build does not own
	// (the secret's hash, the creation time, other records' links) stays.
	c := *old
	c.Name, c.AuthMethod, c.JWKS = built.Name, built.AuthMethod, built.JWKS
	c.GrantTypes, c.Scopes, c.Audiences, c.RedirectURIs = built.GrantTypes, built.Scopes, built.Audiences, built.RedirectURIs
	c.AccessTokenFormat, c.AccessTokenTTL, c.RefreshTokenTTL = built.AccessTokenFormat, built.AccessTokenTTL, built.RefreshTokenTTL
	c.TokenFingerprint, c.FirstParty, c.AccessTokenEncryptionKey = built.TokenFingerprint, built.FirstParty, built.AccessTokenEncryptionKey
	c.DPoP, c.RequirePAR = built.DPoP, built.RequirePAR
	c.IDTokenAlgorithm = built.IDTokenAlgorithm
	c.WebOrigins = built.WebOrigins
	switch {
	case len(built.SecretHash) == 0:
		c.SecretHash, secret = nil, ""
	case len(old.SecretHash) > 0:
		c.SecretHash, secret = old.SecretHash, ""
	default:
		c.SecretHash = built.SecretHash
	}
	c.UpdatedAt = m.now().UTC()
	if err := m.Store.UpdateClient(ctx, &c); err != nil {
		return nil, err
	}
	v := ViewOf(&c)
	v.Secret = secret
	v.Warnings = registrationWarnings(v)
	return v, nil
}

// registrationWarnings says what a registration allows that is easy to
// grant by mistake; Create and Update return them in ClientView.Warnings.
func registrationWarnings(v *ClientView) []string {
	var w []string
	userGrant := slices.Contains(v.GrantTypes, latch.GrantAuthorizationCode) || slices.Contains(v.GrantTypes, latch.GrantPassword)
	if slices.Contains(strings.Fields(v.Scope), latch.ScopeAdmin) && userGrant {
		w = append(w, "scope "+latch.ScopeAdmin+" with a grant for users ("+strings.Join(v.GrantTypes, " ")+
			"): a user who signs in through this client gets "+latch.ScopeAdmin+" only while holding the role "+latch.RoleAdmin+
			" (`latch user set-roles USER --role "+latch.RoleAdmin+"`), and then administers the server from wherever the client runs; "+
			"prefer a client_credentials client for automation (docs/admin.md)")
	}
	return append(w, ClientWarnings(v)...)
}

// ClientWarnings says what a registration, valid as it is, cannot do: the
// token requests it will make that the server will refuse. Create and
// Update return them in ClientView.Warnings, after the warnings of what it
// allows by mistake, for the CLI and the admin API alike.
func ClientWarnings(v *ClientView) []string {
	var w []string
	issues := slices.ContainsFunc(v.GrantTypes, func(g string) bool {
		return g != latch.GrantRefreshToken
	})
	if issues && len(v.Audiences) == 0 {
		// checkAudience refuses every access token without one.
		w = append(w, "it has no audience, so every token request gets invalid_target; add the API it calls with `latch client update "+v.ID+" --audience API`")
	}
	if slices.Contains(v.GrantTypes, latch.GrantRefreshToken) &&
		!slices.Contains(v.GrantTypes, latch.GrantAuthorizationCode) && !slices.Contains(v.GrantTypes, latch.GrantPassword) {
		w = append(w, "refresh_token alone never yields a refresh token: add authorization_code (`--grant authorization_code,refresh_token`)")
	}
	return w
}

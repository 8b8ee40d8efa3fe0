package latch

// latch's own scopes, roles and audiences: the names the server, its
// clients' registrations and the checks of doctor agree on.

// ScopeAdmin is the scope an access token needs for the admin API.
const ScopeAdmin = "latch:admin"

// RoleAdmin is the role a user must hold for an access token that speaks
// for the user (its sub is the user) to open the admin API, and to be
// granted ScopeAdmin at all (RFC 9068 §7.2: the resource server decides
// with the user's roles, not only the token's scope). Set it with
// `latch user create --role latch:admin` or `latch user set-roles`.
// Tokens of a client itself (client_credentials) need no role.
const RoleAdmin = "latch:admin"

// AudienceAdmin is the audience an access token needs for the admin API.
// The admin API is a resource server like any other (RFC 9068 §4): a token
// minted for another API, even with the latch:admin scope, must not open it,
// or every API that receives such a token could administer the server.
const AudienceAdmin = "urn:latch:admin"

// ScopeIntrospect is the scope a client must be registered for to
// introspect the access tokens of other clients: those with an audience
// among its own registered audiences.
const ScopeIntrospect = "latch:introspect"

// AudienceIntrospection is the audience an access token needs to serve as
// the caller's credential at the introspection endpoint (RFC 7662 §2.1's
// bearer alternative). As for the admin API, a token minted for an API,
// even with the latch:introspect scope, must not be usable here by the API
// that received it.
const AudienceIntrospection = "urn:latch:introspect"

// The OpenID Connect scopes (OIDC Core §3.1.2.1, §5.4, §11).
const (
	// ScopeOpenID asks for an ID token.
	ScopeOpenID = "openid"
	// ScopeProfile releases preferred_username and the profile claims in
	// the ID token and at userinfo.
	ScopeProfile = "profile"
	// ScopeEmail releases email and email_verified.
	ScopeEmail = "email"
	// ScopeAddress and ScopePhone are accepted but release nothing: latch
	// keeps no postal address or phone number.
	ScopeAddress = "address"
	ScopePhone   = "phone"
	// ScopeOfflineAccess is not required for a refresh token: every client
	// registered for the refresh_token grant gets one with the
	// authorization code grant. It is accepted so that OIDC libraries that
	// send it work unchanged.
	ScopeOfflineAccess = "offline_access"
)

// OIDCScopes are the scopes OpenID Connect defines: every client
// registered for openid may request them without registering each.
var OIDCScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeAddress, ScopePhone, ScopeOfflineAccess}

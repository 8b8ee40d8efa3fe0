package oauth

// Token type identifiers of RFC 8693 §3, used by the token exchange grant
// (the grant type's URN is latch.GrantTokenExchange).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

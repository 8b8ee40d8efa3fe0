package oauth

// TokenResponse is the successful answer of the token endpoint (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	IDToken         string `json:"id_token,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"` // RFC 8693 §2.2.1
}

// Introspection is the answer of the introspection endpoint (RFC 7662 §2.2).
// Every field but Active is omitted when empty, so the zero value marshals to
// exactly {"active":false}: an inactive token reveals nothing about why.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
}

// Metadata is the authorization server metadata of RFC 8414 §2, also served
// as the OpenID Provider metadata of OIDC Discovery §3.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	// The signing algorithms of private_key_jwt assertions at the
	// revocation and introspection endpoints: RFC 8414 §2 requires them
	// whenever private_key_jwt is listed for the endpoint.
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionSigningAlgValuesSupported             []string `json:"introspection_signing_alg_values_supported,omitempty"` // RFC 9701 §7
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported,omitempty"`
	SubjectTypesSupported                              []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported                   []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ServiceDocumentation                               string   `json:"service_documentation,omitempty"`
	EndSessionEndpoint                                 string   `json:"end_session_endpoint,omitempty"` // OIDC RP-Initiated Logout §2.1
	ResponseModesSupported                             []string `json:"response_modes_supported,omitempty"`
	ClaimsSupported                                    []string `json:"claims_supported,omitempty"`
	// OIDC Discovery §3: request_uri_parameter_supported defaults to true
	// when absent, so a server without it must say false; the others are
	// said for clarity.
	RequestParameterSupported    bool  `json:"request_parameter_supported"`
	RequestURIParameterSupported *bool `json:"request_uri_parameter_supported,omitempty"`
	ClaimsParameterSupported     bool  `json:"claims_parameter_supported"`
	// AuthorizationResponseIssParameterSupported: RFC 9207 §3.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// OpaqueTokenKeysEndpoint is latch's own: where confidential clients
	// fetch the keys that tag opaque access tokens (docs/gateway.md).
	OpaqueTokenKeysEndpoint string `json:"opaque_token_keys_endpoint,omitempty"`
}

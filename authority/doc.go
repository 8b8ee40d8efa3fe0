// Package authority is latch's token authority: the rules by which access
// and refresh tokens are issued (the client_credentials grant, every
// grant's minting and refresh-token successors), inspected (RFC 7662
// introspection with its caller policies) and revoked (RFC 7009), with the
// caches that make introspection cheap (TokenCache for opaque tokens, the
// verified-JWT cache) and the encryption of access tokens to clients that
// ask for it (JWE).
//
// The server's handlers apply these rules behind client authentication;
// the CLI applies them on the operator's authority to the store a running
// server shares. Both go through Tokens, so a token issued, inspected or
// revoked either way obeys one implementation.
//
// It owns no HTTP: no requests, responses or cookies are read here (a
// fingerprint cookie is minted as a Set-Cookie value for the caller to
// send). It may import the root package, oauth (wire errors and types),
// token, keys and internal/tokencache; never server or a storage backend.
package authority

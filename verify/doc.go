// Package verify is latch's resource-server library: it lets a Go service
// check latch access tokens on every request.
//
// It owns:
//
//   - JWT access tokens (RFC 9068) verified locally by a Verifier: the issuer's
//     metadata is discovered (RFC 8414, OIDC Discovery as a fallback), its JWKS
//     fetched, parsed on the standard library and cached, refreshed as its
//     Cache-Control says (within a floor and a ceiling) and, on an unknown
//     kid, at most once per Config.UnknownKeyInterval for all callers
//     together. When the issuer is down the keys already fetched keep
//     serving. Every check of security invariants 1-3 is token.Verify's, with
//     the algorithms pinned per key by this package's JWK parser.
//     NewWithJWKS takes the key set as a document instead, for services that
//     verify offline and for tests: it never makes a request.
//
//   - a cache of verified tokens, keyed by SHA-256 of the token, whose
//     entries never outlive the token's exp; the denylist hook
//     (Config.IsRevoked, keyed on iss and jti as security invariant 4 asks) is
//     consulted on every request, cache hits included.
//
//   - opaque tokens (lt_at_) checked by an RFC 7662 introspection client,
//     the Introspector, with a bounded cache of whole answers, so the scope
//     or audience of one token is never taken for another's; TagKeys, the
//     issuer's opaque-token tag keys, refuses forged tokens before any
//     introspection.
//
//   - net/http middleware: RFC 6750 bearer tokens from the Authorization
//     header (or a named cookie), 401 and 403 answers with WWW-Authenticate,
//     the claims in the request context, and RequireScope.
//
//   - the subscription to the issuer's revocation feed (GET
//     /oauth2/revocations): FollowRevocations keeps the live (iss, jti)
//     denylist in memory, to plug into Config.IsRevoked, and calls OnOpaque
//     and OnReset for the Introspector's Drop and Flush. When the feed is down
//     it serves its last state for MaxStale, then fails closed (unless
//     FailOpen); docs/revocation-feed.md.
//
//   - DPoP-bound tokens (RFC 9449): with Config.DPoP (a dpop.Checker) the
//     middleware accepts Authorization: DPoP <token> with a proof in the
//     DPoP header, checked on every request against the request (htu from
//     Config.ExternalURL), the token (ath) and the token's cnf.jkt (a JWT
//     claim, or the introspection answer's cnf); a bound token sent as
//     Bearer is refused whatever the configuration (§7.2), unless
//     Config.SkipDPoPProofCheck says a gateway in front checked it;
//     docs/dpop.md.
//
//   - encrypted access tokens (nested JWTs: the signed token inside a
//     compact JWE, for clients registered with --encrypt-to): decrypted with
//     Config.DecryptionKeys, alg and enc pinned, zip and key-naming headers
//     refused, then verified as above; Config.RequireEncryption refuses
//     plain ones.
//
// It does not own session cookies (the BFF's), token issuance, or keys: it
// never signs anything.
//
// Signed tokens are verified with the standard library and latch's token
// package. The one third-party import is go-jose (v4, itself free of
// dependencies), for JWE decryption only: ECDH-ES key agreement, AES key
// unwrap and the content ciphers are not code to write twice. The
// single-flight of JWKS refreshes and introspection calls is a few lines
// here rather than golang.org/x/sync/singleflight.
package verify

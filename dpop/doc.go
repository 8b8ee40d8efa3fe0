// Package dpop owns DPoP proofs (RFC 9449): checking the proof a client
// sends in the DPoP header against the request it came with (Checker), the
// RFC 7638 thumbprint that binds a token to the proof's key (cnf.jkt), the
// cache that refuses a proof used twice (ReplayCache, bounded in memory
// here, shared across nodes in package redis), resource-server nonces
// (Nonces, RFC 9449 §9), and making proofs (Prover) for clients, tests and
// the BFF.
//
// It does not own tokens or their binding: the authorization server
// decides which tokens are bound and writes cnf, package verify and the
// gateway compare a token's cnf.jkt with the proof's key and answer the
// HTTP challenges.
//
// Proofs are parsed on the standard library with latch's token package for
// the JSON scanner and the signature, like access tokens: the check runs on
// every request of a bound token. In CPU time beside the bare ES256 check
// of the same proof, Check in full (claims, htu, ath, replay cache) costs
// 1.05-1.08x, go-jose parsing, verifying and thumbprinting it 1.48-1.64x
// (BenchmarkCheck); the checked header of a key seen before comes from a
// small cache. The proof header may hold typ, alg and jwk only; the jwk
// must be a public key.
package dpop

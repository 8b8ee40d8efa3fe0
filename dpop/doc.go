// Package dpop owns DPoP proofs (RFC 9449): checking the proof a client
// sends in the DPoP header against the request it came with (Checker), the
// RFC 7638 thumbprint that binds a token to the proof's key (cnf.jkt), the
// cache that refuses a proof used twice (ReplayCache, bounded in memory
// here, shared across nodes in package redis), and making proofs (Prover)
// for clients, tests and the BFF.
//
// It does not own tokens or their binding: the authorization server
// decides which tokens are bound and writes cnf, package verify and the
// gateway compare a token's cnf.jkt with the proof's key, and nonces are
// handed out by whoever configures a NonceChecker.
//
// Proofs are parsed on the standard library with latch's token package for
// the signature, like access tokens: the check is on every request of a
// bound token, and go-jose's generic JWS parsing costs more than the rest
// of the check together (see BenchmarkCheck). The proof header may hold
// typ, alg and jwk only; the jwk must be a public key.
package dpop

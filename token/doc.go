// Package token owns the formats of latch's credentials: it mints and parses
// opaque tokens (lt_at_ / lt_rt_ with a checksum, and optionally an
// HMAC tag under a TagKey that verifiers hold), random identifiers and
// client secrets, and it signs and verifies JWTs (RFC 7515 compact JWS in the
// RFC 9068 profile) on the standard library's crypto.
//
// It does not own keys (package keys generates, seals, rotates and publishes
// them; Verify sees them only through the one-method KeySet), storage (only
// Hash of an opaque token is ever stored, by the caller), revocation (the
// (iss, jti) denylist lives in the store and in package verify) or any wire
// format other than the token strings themselves.
//
// JWS is hand-written rather than built on a JOSE library because token
// verification is the resource servers' hot path: Verify adds a few per cent
// to the bare signature check (see BenchmarkVerify), and its parser accepts
// only what latch itself emits, which keeps the attack surface small
// (RFC 8725 §2, §3).
package token

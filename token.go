package latch

import "time"

// TokenKind tells access tokens from refresh tokens in the token store.
type TokenKind string

const (
	KindAccess  TokenKind = "access"
	KindRefresh TokenKind = "refresh"
)

// Token is the server-side record of an opaque token (lt_at_ or lt_rt_).
// The bearer string itself is never stored: Hash is its SHA-256, so a copy
// of the database yields no usable credential.
type Token struct {
	Hash []byte // SHA-256 of the full token string; the primary key
	Kind TokenKind
	// ID is a random identifier, safe to log and to put in the revocation
	// feed, that names the token without revealing it (like a JWT's jti).
	ID       string
	ClientID string
	// RegistrationID is the Client.RegistrationID of ClientID when the
	// token was issued: the token is active only while the client has it.
	RegistrationID string
	Subject        string
	Scope          []string
	Audience       []string
	// FamilyID groups the refresh tokens of one grant and the access tokens
	// they issued, so reuse of a rotated refresh token can revoke them all.
	// Empty for tokens outside a family (client_credentials).
	FamilyID  string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// JKT is the RFC 7638 thumbprint of the DPoP key the token is bound to
	// (RFC 9449 §6: an access token's cnf.jkt; §5: a public client's
	// refresh token), "" for a token that is not bound.
	JKT string
	// RotatedAt is when a refresh token was first exchanged for a
	// successor (GrantStore.RotateRefresh); zero until then. A rotated
	// token is kept until it expires so that its reuse is recognised.
	RotatedAt time.Time
}

// Active reports whether the token is within its lifetime at now.
func (t *Token) Active(now time.Time) bool { return now.Before(t.ExpiresAt) }

// RevocationKind says what a revocation entry revokes.
type RevocationKind string

const (
	// RevokeJWT denylists a JWT by (Issuer, JTI) until ExpiresAt (security
	// invariant 4: never keyed on token bytes, ECDSA signatures are malleable).
	RevokeJWT RevocationKind = "jwt"
	// RevokeOpaque records that an opaque token (TokenHash) was deleted, so
	// caches in front of introspection drop it.
	RevokeOpaque RevocationKind = "opaque"
)

// Revocation is one entry of the revocation log. The log doubles as the
// denylist for JWTs and as the feed that resource servers and other server
// nodes follow by Seq.
type Revocation struct {
	Seq       int64 // assigned by the store, strictly increasing, never reused
	Kind      RevocationKind
	Issuer    string // RevokeJWT
	JTI       string // RevokeJWT
	TokenHash []byte // RevokeOpaque
	// ExpiresAt is when the revoked credential would have expired anyway;
	// after it the entry may be purged.
	ExpiresAt time.Time
	RevokedAt time.Time
	// Created is set by RevocationStore.Revoke: true when this call appended
	// the entry, false when it was already there. Single-use checks (client
	// assertion jtis) rely on exactly one concurrent caller seeing true.
	Created bool
}

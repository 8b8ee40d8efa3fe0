package latch

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// AuthCode is the server-side record of an authorization code (RFC 6749
// §4.1, PKCE RFC 7636), by the SHA-256 of the code. A code is single-use:
// RedeemCode marks it used and keeps the record as long as its family can
// be revoked, so that a second use, however late, is recognised and
// revokes what the first one issued (RFC 6749 §4.1.2).
type AuthCode struct {
	Hash        []byte // SHA-256 of the code string; the primary key
	ClientID    string
	UserID      string
	SessionID   string // the sid of the login session that approved it
	RedirectURI string // exactly as sent to /authorize; the token request must repeat it
	Scope       []string
	Audience    []string
	Nonce       string // OIDC nonce, copied into the ID token; may be empty
	// CodeChallenge is the PKCE S256 challenge, base64url(SHA-256(verifier)).
	CodeChallenge string
	AuthTime      time.Time // the session's AuthTime (OIDC auth_time)
	// DPoPJKT is the dpop_jkt of the authorization request (RFC 9449
	// §10): the code may be redeemed only with a DPoP proof of that key.
	// Empty when the request named none.
	DPoPJKT string
	// FamilyID is the refresh family the redemption creates. It is fixed
	// when the code is issued so that a reused code can revoke the family
	// (and every token in it) that its first redemption started.
	FamilyID string
	IssuedAt time.Time
	// ExpiresAt is, until the code is redeemed, when it expires. RedeemCode
	// moves it to the family's ExpiresAt when that is later: the purge
	// keeps a used code until then, while a replay can still revoke
	// something, and no longer (only its hash is kept in any case).
	ExpiresAt time.Time
	UsedAt    time.Time // zero until redeemed
}

// Family is one grant's chain of rotated refresh tokens and the access
// tokens they issued (security invariant 7). Revoking it deletes every opaque
// token with its FamilyID and denylists every JWT recorded for it.
type Family struct {
	ID        string
	ClientID  string
	UserID    string
	SessionID string // sid of the login session that started it; "" for the password grant
	Scope     []string
	Audience  []string
	AuthTime  time.Time
	CreatedAt time.Time
	// ExpiresAt is the absolute lifetime: no refresh token of the family
	// outlives it, however often it is rotated.
	ExpiresAt time.Time
	RevokedAt time.Time // zero while the family is live
}

// IssuedJWT remembers a JWT access token issued in a family, so that
// revoking the family can denylist it by (Issuer, JTI).
type IssuedJWT struct {
	Issuer    string
	JTI       string
	ExpiresAt time.Time
}

// Issue is what one grant writes, in the same transaction as the code
// redemption or refresh rotation it results from, so that a crash never
// leaves a token the family does not know of.
type Issue struct {
	Refresh *Token     // new refresh token (Kind refresh, FamilyID set); nil for none
	Access  *Token     // opaque access token; nil when the access token is a JWT
	JWT     *IssuedJWT // JWT access token; nil when it is opaque
}

// FamilyFilter selects families to revoke: those of a user, or those
// started by one login session. Exactly one field is set.
type FamilyFilter struct {
	UserID    string
	SessionID string
}

// GrantStore keeps authorization codes and refresh families.
//
// Errors: ENOTFOUND for an unknown code, token or family; ECONFLICT with
// ErrReused for a second use (of a code, or of a rotated refresh token
// outside the grace window), after the store has revoked the family in the
// same transaction; EUNAUTHORIZED for an expired or revoked credential.
type GrantStore interface {
	// CreateCode stores c; ECONFLICT if c.Hash exists.
	CreateCode(ctx context.Context, c *AuthCode) error
	// Code returns the code with hash, used or not; ENOTFOUND if none.
	Code(ctx context.Context, hash []byte) (*AuthCode, error)
	// RedeemCode uses the code once. In one transaction: if the code is
	// unknown, ENOTFOUND; if it was used before (expired or not), it
	// revokes the family code.FamilyID (as RevokeFamily) and returns
	// ErrReused; if it is expired at now, EUNAUTHORIZED; otherwise it sets
	// UsedAt, moves ExpiresAt to f.ExpiresAt if that is later (see
	// AuthCode.ExpiresAt), stores f (whose ID must be the code's FamilyID)
	// and writes issue.
	RedeemCode(ctx context.Context, hash []byte, now time.Time, f *Family, issue Issue) error

	// CreateFamily stores f and writes issue in one transaction: a grant
	// that starts a family without a code (the password grant). ECONFLICT
	// if f.ID or a token of issue exists.
	CreateFamily(ctx context.Context, f *Family, issue Issue) error
	// Family returns the family with id, revoked or not; ENOTFOUND if none.
	Family(ctx context.Context, id string) (*Family, error)
	// RefreshChain returns the refresh token with hash (rotated or not),
	// its family (revoked or not) and the family's user, read together:
	// the refresh grant checks all three before it mints, and one read
	// costs a third of three. ENOTFOUND if no refresh token has hash, or
	// its family or user is gone. What it returns may be stale by the
	// time RotateRefresh runs; RotateRefresh decides the token's and the
	// family's state again in its transaction.
	RefreshChain(ctx context.Context, hash []byte) (*Token, *Family, *User, error)
	// RotateRefresh uses the refresh token with hash once. In one
	// transaction:
	//   - no such refresh token (never issued, purged, or its family
	//     revoked and deleted): ENOTFOUND;
	//   - the token or its family expired at now, or the family revoked:
	//     EUNAUTHORIZED;
	//   - the token was never rotated: it is marked rotated at now and
	//     issue is written;
	//   - it was rotated less than grace ago (a client that sent the same
	//     token twice at once, or retried): a retry. Its successor is the
	//     first rotation's: issue.Refresh, when set, must be a refresh
	//     token of the family already stored (callers derive the successor
	//     from the presented token, so every use gets the same one); it is
	//     not written again, and the rest of issue is. If no such token is
	//     stored, EUNAUTHORIZED and nothing is written: a retry never
	//     starts a second chain;
	//   - it was rotated grace or more ago: reuse. The family is revoked
	//     (as RevokeFamily) and ErrReused returned.
	// It returns the presented token and its family. The caller checks
	// that the token belongs to the calling client before calling.
	RotateRefresh(ctx context.Context, hash []byte, now time.Time, grace time.Duration, issue Issue) (*Token, *Family, error)
	// RevokeFamily marks the family revoked at now, deletes every token
	// with its FamilyID, and appends to the revocation log, in the same
	// transaction, a RevokeOpaque entry for each of those tokens not yet
	// expired and a RevokeJWT entry for each recorded IssuedJWT not yet
	// expired. Revoking a revoked family is not an error; ENOTFOUND if none.
	RevokeFamily(ctx context.Context, id string, now time.Time) error
	// RevokeFamilies revokes, as RevokeFamily, every live family matching
	// f, and returns how many it revoked. In the same transaction it
	// deletes the unredeemed codes matching f (same user, or same
	// session), which would otherwise start a family after the sign-out.
	// EINVALID unless exactly one field of f is set.
	RevokeFamilies(ctx context.Context, f FamilyFilter, now time.Time) (int, error)
	// UserFamilies returns the user's families that are not revoked,
	// expired or not, oldest first; none (and no error) for a user without
	// any or no such user. For the account page's list of applications.
	UserFamilies(ctx context.Context, userID string) ([]*Family, error)
}

// ErrReused is in the chain of the error a store returns when a
// single-use credential is presented again (see Reusedf).
// errors.Is(err, ErrReused) tells it from other conflicts.
var ErrReused = errors.New("latch: credential reused")

// Reusedf returns an error whose ErrorCode is ECONFLICT and that
// errors.Is ErrReused.
func Reusedf(format string, args ...any) error {
	return fmt.Errorf("%w (%w)", Errorf(ECONFLICT, format, args...), ErrReused)
}

// SID returns the session's public identifier, the OIDC sid claim: a
// digest of IDHash, so that it names the session in ID tokens, logs and
// the family records without revealing anything that opens it.
func (s *Session) SID() string {
	sum := sha256.Sum256(append([]byte("latch sid\x00"), s.IDHash...))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Redemption is the verdict of RedeemCode's rules on a stored code, so
// that every backend applies the same ones, in the same order.
type Redemption int

const (
	// RedeemUse: mark the code used, store the family, write the issue.
	RedeemUse Redemption = iota + 1
	// RedeemReuse: the code was used before, expired or not; revoke the
	// family it started and return ErrReused.
	RedeemReuse
	// RedeemExpired: EUNAUTHORIZED.
	RedeemExpired
	// RedeemOtherFamily: the caller's family is not the code's; EINVALID.
	RedeemOtherFamily
)

// RedemptionOf applies GrantStore.RedeemCode's rules to code c, redeemed
// at now into the family familyID.
func RedemptionOf(c *AuthCode, now time.Time, familyID string) Redemption {
	switch {
	case !c.UsedAt.IsZero():
		// Used before expired: a second use is a reuse whenever it comes
		// (RFC 6749 §4.1.2); the purge keeps the code as long as its
		// family (AuthCode.ExpiresAt).
		return RedeemReuse
	case !now.Before(c.ExpiresAt):
		return RedeemExpired
	case familyID != c.FamilyID:
		return RedeemOtherFamily
	}
	return RedeemUse
}

// UsedCodeExpiry is the ExpiresAt RedeemCode gives code c when it starts
// family f: the later of the code's and the family's, so that the purge
// keeps the used code while a replay can still revoke what it issued.
func UsedCodeExpiry(c *AuthCode, f *Family) time.Time {
	if f.ExpiresAt.After(c.ExpiresAt) {
		return f.ExpiresAt
	}
	return c.ExpiresAt
}

// Rotation is the verdict of RotateRefresh's rules on a stored refresh
// token, so that every backend applies the same ones.
type Rotation int

const (
	// RotateFirst: never rotated; mark it rotated at now, write the issue.
	RotateFirst Rotation = iota + 1
	// RotateRetry: rotated less than grace ago (a client that sent it
	// twice at once); the successor is the one the first rotation stored,
	// write the rest of the issue.
	RotateRetry
	// RotateReuse: rotated grace or more ago; revoke the family and return
	// ErrReused.
	RotateReuse
)

// RotationOf applies GrantStore.RotateRefresh's rules to refresh token t
// of family f at now. When the token may not rotate at all (it or its
// family expired, the family revoked), refused says why, for an
// EUNAUTHORIZED error.
func RotationOf(t *Token, f *Family, now time.Time, grace time.Duration) (r Rotation, refused string) {
	switch {
	case !now.Before(t.ExpiresAt):
		return 0, fmt.Sprintf("refresh token %s expired at %v", t.ID, t.ExpiresAt)
	case !now.Before(f.ExpiresAt):
		return 0, fmt.Sprintf("family %s expired at %v", f.ID, f.ExpiresAt)
	case !f.RevokedAt.IsZero():
		return 0, fmt.Sprintf("family %s revoked at %v", f.ID, f.RevokedAt)
	case t.RotatedAt.IsZero():
		return RotateFirst, ""
	case now.Sub(t.RotatedAt) < grace:
		return RotateRetry, ""
	}
	return RotateReuse, ""
}

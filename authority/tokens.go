package authority

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/tokencache"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// Tokens issues, inspects and revokes access and refresh tokens by value:
// the rules of the client_credentials grant (RFC 6749 §4.4), of
// introspection (RFC 7662) and of revocation (RFC 7009) in one place. The
// server's endpoints apply them with the client's authentication in front;
// the CLI (`latch token`) applies them on the operator's authority, to the
// store a running server shares. A token issued, inspected or revoked
// either way obeys one implementation.
//
// A server (package server) builds its own Tokens over its token cache and
// client cache.
// One built by another process (the CLI) reads and writes the plain store;
// running servers learn of its revocations through the revocation log
// (within 100 ms for their token caches, docs/operations.md), and of JWT
// revocations at once, since the denylist is read from the store.
//
// Zero optional fields take the server's defaults.
type Tokens struct {
	Store latch.Store
	// Keys sign and verify JWTs; only opaque tokens can be inspected and
	// revoked without them.
	Keys *keys.Manager
	// Issuer is the iss of the tokens Issue mints. It must be the issuer
	// the servers run with, or the tokens will not verify there: Issue
	// refuses to work without it. For Inspect and Revoke it may be empty:
	// a JWT is then ours when one of Keys signed it, whatever its iss.
	Issuer string
	// AccessTokenTTL is the lifetime of access tokens of clients that set
	// none (default 10 minutes); MaxAccessTokenTTL caps every client's
	// (default 24 hours). Leeway is the clock skew allowed on a JWT's
	// times (default 30 seconds). All as in server.Config.
	AccessTokenTTL    time.Duration
	MaxAccessTokenTTL time.Duration
	Leeway            time.Duration
	Now               func() time.Time
	Rand              io.Reader
	// RefreshTokenTTL is the idle lifetime of refresh tokens of clients
	// that set none (default DefaultRefreshTokenTTL), as in server.Config.
	RefreshTokenTTL time.Duration
	// SuccessorKey derives a rotated refresh token's successor from its
	// parent (successorOf); required to rotate refresh tokens.
	SuccessorKey []byte
	// TagKeys: the first tags new opaque access tokens
	// (token.NewTaggedOpaque). Empty: they are minted untagged, which
	// verifiers can judge only by asking (as server.Config.OpaqueTagKeys).
	TagKeys []*token.TagKey

	// Set by a long-running server, nil elsewhere. ClientLookup reads
	// clients in place of Store (the server's client cache); OnRevoke is
	// called after every revocation (the wake-up of its revocation feed);
	// Cache holds opaque access tokens read from the store, and must then
	// also sit in front of Store (TokenCache.Wrap).
	ClientLookup func(ctx context.Context, id string) (*latch.Client, error)
	OnRevoke     func()
	Cache        *TokenCache

	// verified holds JWTs verified here (see verifyJWT); nil unless
	// CacheVerified was called.
	verified *tokencache.Cache[verifiedJWT]

	cachedSigner atomic.Pointer[token.Signer]

	// RefuseUnknownScopes: see GrantScope.
	RefuseUnknownScopes bool
	// ScopeCacheTTL is how long the union of every client's scopes is
	// reused (see scopeRegistered); 0: read on every use.
	ScopeCacheTTL time.Duration
	known         knownScopes
}

// verifiedJWT is what verifyJWT remembers of a JWT whose signature and
// claims it checked: the claims, and the key that signed it.
type verifiedJWT struct {
	claims *token.Claims
	kid    string
}

func (m *Tokens) now() time.Time { return m.clock()() }

// clock is Now or time.Now: a func value, where the method value m.now
// would cost an allocation on every verification.
func (m *Tokens) clock() func() time.Time {
	if m.Now == nil {
		return time.Now
	}
	return m.Now
}

func (m *Tokens) rand() io.Reader {
	if m.Rand == nil {
		return rand.Reader
	}
	return m.Rand
}

func (m *Tokens) leeway() time.Duration {
	if m.Leeway <= 0 {
		return DefaultLeeway
	}
	return m.Leeway
}

// accessTokenTTL is the lifetime of c's access tokens: its own, else the
// default, capped by the maximum.
func (m *Tokens) accessTokenTTL(c *latch.Client) time.Duration {
	ttl := c.AccessTokenTTL
	if ttl <= 0 {
		ttl = m.AccessTokenTTL
	}
	if ttl <= 0 {
		ttl = DefaultAccessTokenTTL
	}
	maxTTL := m.MaxAccessTokenTTL
	if maxTTL <= 0 {
		maxTTL = DefaultMaxAccessTokenTTL
	}
	return min(ttl, maxTTL)
}

func (m *Tokens) client(ctx context.Context, id string) (*latch.Client, error) {
	if m.ClientLookup != nil {
		return m.ClientLookup(ctx, id)
	}
	return m.Store.Client(ctx, id)
}

// ofLiveRegistration reports whether the client clientID is registered,
// as the registration a token of it names: false for a deleted client,
// and for one deleted and registered again under the same ID (its
// RegistrationID is new). Every check of a token's client goes through it,
// cached or not: the token caches hold tokens, never this answer.
func (m *Tokens) ofLiveRegistration(ctx context.Context, clientID, registration string) (bool, error) {
	c, err := m.client(ctx, clientID)
	if errors.Is(err, latch.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return c.RegistrationID == registration, nil
}

// findOpaque returns the stored token raw names, or nil when raw is
// malformed (refused by its checksum without a store lookup), unknown, or
// stored under another kind than its prefix says. Only a failing store is an
// error. Access tokens come from the opaque cache when it holds them; the
// result is shared and must not be modified.
func (m *Tokens) findOpaque(ctx context.Context, raw string) (*latch.Token, error) {
	kind, err := token.ParseOpaque(raw)
	if err != nil {
		return nil, nil
	}
	hash := token.Hash(raw)
	if m.Cache == nil || kind != latch.KindAccess {
		return storedOpaque(ctx, m.Store, kind, hash)
	}
	t, gen := m.Cache.get(hash)
	if t != nil {
		return t, nil
	}
	t, err = storedOpaque(ctx, m.Store, kind, hash)
	if t != nil {
		m.Cache.put(hash, t, gen)
	}
	return t, err
}

// storedOpaque returns the token with hash from store when it is of kind;
// nil when there is none or it is of another kind. Only a failing store is
// an error.
func storedOpaque(ctx context.Context, store latch.TokenStore, kind latch.TokenKind, hash []byte) (*latch.Token, error) {
	t, err := store.Token(ctx, hash)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if t.Kind != kind {
		return nil, nil
	}
	return t, nil
}

// revoked tells the server's feed that the log has grown.
func (m *Tokens) revoked() {
	if m.OnRevoke != nil {
		m.OnRevoke()
	}
}

// Signer returns a token.Signer for the current signing key, reusing the
// last one while the key is unchanged (the signer precomputes its header).
func (m *Tokens) Signer() (*token.Signer, error) {
	kid, alg, key, err := m.Keys.Signing()
	if err != nil {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "server: no signing key: %v", err)
	}
	if cur := m.cachedSigner.Load(); cur != nil && cur.KeyID() == kid {
		return cur, nil
	}
	sg, err := token.NewSigner(kid, alg, key)
	if err != nil {
		return nil, err
	}
	m.cachedSigner.Store(sg)
	return sg, nil
}

// CacheVerified remembers up to n JWTs verified here, so that one
// introspected again is not verified again (see verifyJWT). Call it before
// the Tokens is shared.
func (m *Tokens) CacheVerified(n int) {
	m.verified = tokencache.New[verifiedJWT](n)
}

// verifyJWT verifies an access token issued here exactly as a resource
// server would (security invariants 1-3), except for the audience, which is
// the resource server's business, not the issuer's. leeway is m.leeway()
// but for Inspect reading the claims of an expired token.
//
// With the verified cache (the server's), a JWT verified before is not
// verified again: a signed token cannot change, and what made it valid
// stays true until its exp, which the cache entry does not outlive, unless
// its key leaves the key set (latch keys retire --now), which a hit checks.
// The result is shared and must not be modified. Whether the token is
// revoked is the caller's check, made on every request.
func (m *Tokens) verifyJWT(ctx context.Context, raw string) (*token.Claims, error) {
	if m.verified == nil {
		return m.verifyJWTUncached(ctx, raw, KeySet{m.Keys}, false)
	}
	key := sha256.Sum256([]byte(raw))
	now := m.now()
	if v, ok := m.verified.Get(&key, now); ok {
		if _, _, err := m.Keys.Key(ctx, v.kid); err == nil {
			return v.claims, nil
		}
		m.verified.Drop(&key)
	}
	gen := m.verified.Generation()
	ks := &kidRecorder{KeySet: KeySet{m.Keys}}
	claims, err := m.verifyJWTUncached(ctx, raw, ks, false)
	if err == nil {
		m.verified.Put(&key, verifiedJWT{claims: claims, kid: ks.kid}, time.Unix(claims.ExpiresAt, 0), now, gen)
	}
	return claims, err
}

// verifyJWTUncached verifies raw without the cache; allowExpired reads the
// claims of an expired token (for the operator, never for access).
func (m *Tokens) verifyJWTUncached(ctx context.Context, raw string, ks token.KeySet, allowExpired bool) (*token.Claims, error) {
	return m.verifyJWTLeeway(ctx, raw, ks, allowExpired, m.leeway())
}

// revocationClockSkew is how far ahead of this node's clock another node's
// may be for its not-yet-valid JWTs still to be revoked here.
const revocationClockSkew = 24 * time.Hour

func (m *Tokens) verifyJWTLeeway(ctx context.Context, raw string, ks token.KeySet, allowExpired bool, leeway time.Duration) (*token.Claims, error) {
	return token.Verify(ctx, raw, ks, token.VerifyOptions{
		Issuer:            m.Issuer,
		SkipIssuerCheck:   m.Issuer == "",
		SkipAudienceCheck: true,
		Type:              token.TypeAccessToken,
		Algorithms:        latch.Algorithms,
		Leeway:            leeway,
		Now:               m.clock(),
		AllowExpired:      allowExpired,
	})
}

// kidRecorder remembers the kid that verification asked for: the key the
// token names, and, once verification succeeds, the key that signed it.
type kidRecorder struct {
	KeySet
	kid string
}

func (k *kidRecorder) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	k.kid = kid
	return k.KeySet.Key(ctx, kid)
}

// InactiveReason says why a token is not active. The introspection
// endpoint never tells (security invariant 5: every inactive token is
// exactly {"active":false}); Tokens.Inspect tells the operator.
type InactiveReason string

const (
	// ReasonMalformed: not a token latch issues at all (wrong length,
	// prefix or checksum of an opaque token; not a JWT).
	ReasonMalformed InactiveReason = "malformed"
	// ReasonUnknown: a well-formed opaque token this store does not hold
	// and has no revocation of: never issued here (another deployment, or
	// another data directory or database), or expired and purged.
	ReasonUnknown InactiveReason = "unknown"
	// ReasonExpired: past its exp.
	ReasonExpired InactiveReason = "expired"
	// ReasonRevoked: revoked by value, with its refresh-token family, its
	// user's sign-out everywhere or its client's deletion.
	ReasonRevoked InactiveReason = "revoked"
	// ReasonBadSignature: a JWT whose kid names one of our keys but whose
	// signature does not verify with it: altered or forged.
	ReasonBadSignature InactiveReason = "bad_signature"
	// ReasonNotOurs: a JWT signed by a key this store does not hold, or
	// issued under another issuer.
	ReasonNotOurs InactiveReason = "not_ours"
	// ReasonWrongType: a JWT that is not an access token (an ID token, an
	// introspection answer).
	ReasonWrongType InactiveReason = "wrong_type"
	// ReasonNotYetValid: a JWT whose nbf or iat is ahead of the clock.
	ReasonNotYetValid InactiveReason = "not_yet_valid"
	// ReasonRefused: a JWT refused before its signature was checked: an
	// algorithm or header parameter latch never accepts (alg none, jwk...).
	ReasonRefused InactiveReason = "refused"
	// ReasonClientDeleted: a token of a client that no longer exists, or
	// of a deleted registration of a client ID registered again.
	ReasonClientDeleted InactiveReason = "client_deleted"
	// ReasonEncrypted: a JWT encrypted to a resource server (a JWE), which
	// this server cannot read.
	ReasonEncrypted InactiveReason = "encrypted"
	// ReasonOtherClient: a refresh token introspected by a client it was
	// not issued to.
	ReasonOtherClient InactiveReason = "other_client"
	// ReasonNotPermitted: an access token introspected by a client the
	// introspection policy (mayIntrospect) does not let see it.
	ReasonNotPermitted InactiveReason = "not_permitted"
)

// Token formats, as Inspection.Format names them.
const (
	FormatOpaque = "opaque"
	FormatJWT    = "jwt"
	FormatJWE    = "jwe"
)

// Inspection is what Tokens.Inspect found out about a token: the RFC 7662
// answer, and, for the operator, why an inactive token is inactive. The
// claims of an inactive token are filled when they are known (a revoked or
// expired token that could still be read), so that the operator learns
// whose it was; only Answer is ever sent to a client.
type Inspection struct {
	oauth.Introspection
	// Reason is set when the token is not active; Detail says it for
	// people.
	Reason InactiveReason `json:"reason,omitempty"`
	Detail string         `json:"reason_detail,omitempty"`
	// Format is opaque (lt_ prefix), jwe (five segments) or jwt (anything
	// else).
	Format string `json:"format"`
	// FamilyID is the refresh-token family of a token issued in one.
	FamilyID string `json:"family_id,omitempty"`
}

// Answer is the introspection endpoint's answer: the claims of an active
// token, exactly {"active":false} for any other (security invariant 5).
func (in *Inspection) Answer() oauth.Introspection {
	if !in.Active {
		return oauth.Introspection{}
	}
	return in.Introspection
}

// examined is an Inspection and the record or verified claims behind it.
type examined struct {
	Inspection
	record *latch.Token  // the stored opaque token, when found
	claims *token.Claims // the JWT's claims, when its signature verified
	verr   error         // why the JWT did not verify
}

func (x *examined) inactive(r InactiveReason) {
	x.Active = false
	x.Reason = r
}

// Policy names whose rules an introspection follows: what a token is
// active to, and how much is worked out about an inactive one.
type Policy struct {
	caller   *latch.Client
	operator bool
}

// ClientPolicy is the rule of the introspection endpoint for the
// authenticated client c (RFC 7662 §2.2): a refresh token is active only to
// its own client, an access token only to the clients mayIntrospect allows.
// With c nil it is the rule of the server's own bearer-authenticated
// endpoints (userinfo, the admin API, introspection by bearer token), which
// want access tokens and check their audience and scope themselves: a
// refresh token is never active to them. An inactive token's reason is
// named, not explained: the endpoint answers {"active":false} anyway.
func ClientPolicy(c *latch.Client) Policy { return Policy{caller: c} }

// OperatorPolicy is the rule of the operator (`latch token inspect`, the
// admin tools): a refresh token is shown, an expired JWT's claims are read,
// a revoked opaque token is told from an unknown one, and an inactive
// token's reason is explained in words, at the cost of more reads.
var OperatorPolicy = Policy{operator: true}

// Introspect says whether raw is an active token issued here under policy
// p, with its claims, and if not why. Only a failing store is an error. It
// never returns, logs or stores raw.
func (m *Tokens) Introspect(ctx context.Context, raw string, p Policy) (Inspection, error) {
	x, err := m.introspect(ctx, raw, p)
	return x.Inspection, err
}

// introspect is Introspect keeping what Revoke needs: the stored record
// or the verified claims.
func (m *Tokens) introspect(ctx context.Context, raw string, p Policy) (examined, error) {
	x, err := m.look(ctx, raw, p)
	if err == nil && p.operator && !x.Active {
		x.Detail = m.explain(&x, raw)
	}
	return x, err
}

// look is introspect without the explanation.
func (m *Tokens) look(ctx context.Context, raw string, p Policy) (examined, error) {
	caller := p.caller
	var x examined
	if token.IsOpaque(raw) {
		x.Format = FormatOpaque
		t, err := m.findOpaque(ctx, raw)
		if err != nil {
			return x, err
		}
		if t == nil {
			return x, m.whyNotFound(ctx, &x, raw, p.operator)
		}
		// Deleting a client deletes its opaque tokens; this catches one
		// stored by a request that authenticated the client just before
		// it was deleted and registered again.
		live, err := m.ofLiveRegistration(ctx, t.ClientID, t.RegistrationID)
		if err != nil {
			return x, err
		}
		x.record = t
		x.FamilyID = t.FamilyID
		x.Introspection = oauth.Introspection{
			Active: true, Scope: strings.Join(t.Scope, " "), ClientID: t.ClientID, TokenType: "Bearer",
			Exp: t.ExpiresAt.Unix(), Iat: t.IssuedAt.Unix(), Sub: t.Subject, Aud: t.Audience,
			Iss: m.Issuer, Jti: t.ID,
		}
		if t.Kind == latch.KindRefresh {
			x.TokenType = "refresh_token"
		}
		switch {
		case !t.Active(m.now()):
			x.inactive(ReasonExpired)
		case !live:
			x.inactive(ReasonClientDeleted)
		case t.Kind == latch.KindRefresh && !p.operator && (caller == nil || caller.ID != t.ClientID):
			x.inactive(ReasonOtherClient)
		case caller != nil && !mayIntrospect(caller, t.ClientID, t.Audience):
			x.inactive(ReasonNotPermitted)
		}
		return x, nil
	}
	if token.IsCompactJWE(raw) {
		// An encrypted access token (encrypt.go) can be read only with the
		// resource server's private key, which this server never holds:
		// it cannot tell active from revoked, so it says inactive, like for
		// any token it cannot vouch for. Resource servers verify these
		// locally (verify.Config.DecryptionKeys).
		x.Format = FormatJWE
		x.inactive(ReasonEncrypted)
		return x, nil
	}
	x.Format = FormatJWT
	if m.Keys == nil {
		return x, latch.Errorf(latch.EINTERNAL, "token: no signing keys loaded: a JWT cannot be verified without them")
	}
	claims, err := m.verifyJWT(ctx, raw)
	if errors.Is(err, token.ErrExpired) && p.operator {
		// The signature and every other check passed: read the claims,
		// so the operator learns whose token it was.
		claims, err = m.verifyJWTUncached(ctx, raw, KeySet{m.Keys}, true)
	}
	if err != nil {
		x.verr = err
		x.inactive(jwtReason(err))
		return x, nil
	}
	x.claims = claims
	x.Introspection = oauth.Introspection{
		Active: true, Scope: claims.Scope, ClientID: claims.ClientID, TokenType: "Bearer",
		Exp: claims.ExpiresAt, Iat: claims.IssuedAt, Nbf: claims.NotBefore, Sub: claims.Subject,
		Aud: claims.Audience, Iss: claims.Issuer, Jti: claims.ID,
	}
	// The leeway in verifyJWT is for clock skew between nodes on nbf and
	// iat; exp is this server's own promise, kept to the second, as it is
	// for opaque tokens.
	if m.now().Unix() >= claims.ExpiresAt {
		x.inactive(ReasonExpired)
		return x, nil
	}
	if caller != nil && !mayIntrospect(caller, claims.ClientID, claims.Audience) {
		x.inactive(ReasonNotPermitted)
		return x, nil
	}
	// A JWT outlives its client's deletion only at resource servers that
	// verify it locally; here, where the deletion is known, it is
	// inactive, also once another client is registered under its ID.
	if live, err := m.ofLiveRegistration(ctx, claims.ClientID, registrationOf(claims)); err != nil {
		return x, err
	} else if !live {
		x.inactive(ReasonClientDeleted)
		return x, nil
	}
	revoked, err := m.Store.IsRevoked(ctx, claims.Issuer, claims.ID)
	if err != nil {
		return x, err
	}
	if revoked {
		x.inactive(ReasonRevoked)
	}
	return x, nil
}

// whyNotFound sets the reason of an opaque token that is not stored.
func (m *Tokens) whyNotFound(ctx context.Context, x *examined, raw string, operator bool) error {
	if _, err := token.ParseOpaque(raw); err != nil {
		x.inactive(ReasonMalformed)
		return nil
	}
	if operator {
		revoked, err := m.Store.IsRevokedOpaque(ctx, token.Hash(raw))
		if err != nil {
			return err
		}
		if revoked {
			x.inactive(ReasonRevoked)
			return nil
		}
	}
	x.inactive(ReasonUnknown)
	return nil
}

// explain says for people why x is inactive. It never quotes raw.
func (m *Tokens) explain(x *examined, raw string) string {
	switch x.Reason {
	case ReasonExpired:
		if x.Exp != 0 {
			return "expired at " + stamp(time.Unix(x.Exp, 0))
		}
	case ReasonOtherClient:
		return "a refresh token is active only to the client it was issued to"
	case ReasonEncrypted:
		return "an access token encrypted to a resource server (JWE): only the resource server's private key reads it, so this server cannot tell whether it is active"
	case ReasonClientDeleted:
		return "its client " + oauth.Quote(x.ClientID) + " was deleted (a client registered again under that ID does not revive it); resource servers that verify JWTs locally still accept it until it expires unless it is revoked"
	case ReasonUnknown:
		return "this store holds no such token: it was never issued here (another deployment, data directory or database?), or it expired and was purged"
	case ReasonRevoked:
		if x.Format == FormatOpaque {
			return "the token was deleted and its revocation logged"
		}
		return "its (iss, jti) is on the denylist"
	case ReasonMalformed:
		if x.Format == FormatOpaque {
			return "not a latch opaque token: its length, prefix or checksum is wrong (a typo, or a truncated copy?)"
		}
	}
	if x.verr != nil {
		return jwtDetail(x.verr, m.Issuer, strings.Count(raw, ".") == 2)
	}
	return strings.ReplaceAll(string(x.Reason), "_", " ")
}

// jwtReason maps a verification failure to the reason Inspect gives.
func jwtReason(err error) InactiveReason {
	switch {
	case errors.Is(err, token.ErrExpired):
		return ReasonExpired
	case errors.Is(err, token.ErrUnknownKey), errors.Is(err, token.ErrIssuer):
		return ReasonNotOurs
	case errors.Is(err, token.ErrSignature):
		return ReasonBadSignature
	case errors.Is(err, token.ErrType):
		return ReasonWrongType
	case errors.Is(err, token.ErrNotYetValid), errors.Is(err, token.ErrIssuedInFuture):
		return ReasonNotYetValid
	case errors.Is(err, token.ErrAlgorithm), errors.Is(err, token.ErrHeader):
		return ReasonRefused
	default:
		return ReasonMalformed
	}
}

// jwtDetail says a verification failure for people. The token package's
// messages quote at most bounded header values, never the token.
// looksJWT says whether the input had the three segments of a JWT.
func jwtDetail(err error, issuer string, looksJWT bool) string {
	switch jwtReason(err) {
	case ReasonNotOurs:
		if errors.Is(err, token.ErrIssuer) {
			return "issued under another issuer than " + oauth.Quote(issuer) + " (" + err.Error() + ")"
		}
		return "signed by a key this store does not hold: another server's token, or its key was retired with --now (" + err.Error() + ")"
	case ReasonBadSignature:
		return "the signature does not verify with our key of that kid: the token was altered or forged"
	case ReasonWrongType:
		return "not an access token: an ID token or another kind of JWT (" + err.Error() + ")"
	case ReasonMalformed:
		if !looksJWT {
			return "not a latch token: neither an opaque lt_at_/lt_rt_ token nor a JWT"
		}
		return "not a valid JWT: " + err.Error()
	}
	return err.Error()
}

// stamp formats a time for people, in UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// revokeOpaque revokes the stored opaque token t as RFC 7009 asks: a
// refresh token revokes its grant (§2.1: the family, its other refresh
// tokens and its access tokens), any other token is deleted with a
// RevokeOpaque entry in the log, which caches follow. It reports whether a
// family was revoked.
func (m *Tokens) revokeOpaque(ctx context.Context, t *latch.Token) (family bool, err error) {
	now := m.now()
	if t.Kind == latch.KindRefresh && t.FamilyID != "" {
		if err := m.Store.RevokeFamily(ctx, t.FamilyID, now); err != nil && !errors.Is(err, latch.ErrNotFound) {
			return false, err
		}
		m.revoked()
		return true, nil
	}
	if err := m.Store.Revoke(ctx, &latch.Revocation{Kind: latch.RevokeOpaque, TokenHash: t.Hash, ExpiresAt: t.ExpiresAt, RevokedAt: now}); err != nil {
		return false, err
	}
	m.revoked()
	return false, nil
}

// revokeJWT denylists the verified JWT claims by (iss, jti) (security
// invariant 4) until it could no longer pass a verifier that allows the
// same leeway. It reports whether this call added the entry (false: it was
// denylisted already) and when the entry ends.
func (m *Tokens) revokeJWT(ctx context.Context, claims *token.Claims) (created bool, until time.Time, err error) {
	until = time.Unix(claims.ExpiresAt, 0).Add(m.leeway())
	r := &latch.Revocation{Kind: latch.RevokeJWT, Issuer: claims.Issuer, JTI: claims.ID, ExpiresAt: until, RevokedAt: m.now()}
	if err := m.Store.Revoke(ctx, r); err != nil {
		return false, until, err
	}
	if r.Created {
		m.revoked()
	}
	return r.Created, until, nil
}

// JWERevocationRefusal says why an encrypted access token cannot be revoked by
// value, for the revocation endpoint and the CLI alike.
const JWERevocationRefusal = "encrypted access tokens cannot be revoked by value: this server cannot read their jti; revoke the refresh token they were issued with, or let them expire"

// Revoked is what Tokens.Revoke did.
type Revoked struct {
	// AlreadyRevoked is true when the token had been revoked before:
	// nothing was written.
	AlreadyRevoked bool `json:"already_revoked"`
	// FamilyRevoked is true when the token was a refresh token and its
	// whole family was revoked: its refresh tokens, and the access tokens
	// it issued, opaque (deleted) or JWT (denylisted).
	FamilyRevoked bool `json:"family_revoked,omitempty"`
	// DenylistedUntil is when the denylist entry of a JWT ends: its exp
	// plus the leeway, after which no verifier accepts it anyway.
	DenylistedUntil *time.Time `json:"denylisted_until,omitempty"`
	// Token is the token as it is now: inactive, revoked, with the claims
	// it had.
	Token *Inspection `json:"token"`
}

// Revoke revokes the token raw on the operator's authority, as the
// revocation endpoint does for the client it was issued to: an opaque
// access token is deleted, a refresh token revokes its family, a JWT is
// denylisted by (iss, jti) until it expires. Revoking a revoked token is
// not an error (AlreadyRevoked). A token that is malformed, unknown, not
// ours, expired or encrypted is an EINVALID error saying why, and nothing
// is written. A JWT of a deleted client is revoked all the same: resource
// servers that verify it locally would accept it until it expires.
func (m *Tokens) Revoke(ctx context.Context, raw string) (*Revoked, error) {
	x, err := m.introspect(ctx, raw, OperatorPolicy)
	if err != nil {
		return nil, err
	}
	out := &Revoked{Token: &x.Inspection}
	switch {
	case x.Reason == ReasonRevoked:
		out.AlreadyRevoked = true
		return out, nil
	case x.Reason == ReasonEncrypted:
		return nil, latch.Errorf(latch.EINVALID, "token: %s", JWERevocationRefusal)
	case x.Active || x.Reason == ReasonClientDeleted && x.claims != nil:
	default:
		return nil, latch.Errorf(latch.EINVALID, "token: not revoked, nothing was written: the token is %s: %s", strings.ReplaceAll(string(x.Reason), "_", " "), x.Detail)
	}
	if x.record != nil {
		if out.FamilyRevoked, err = m.revokeOpaque(ctx, x.record); err != nil {
			return nil, err
		}
	} else {
		created, until, err := m.revokeJWT(ctx, x.claims)
		if err != nil {
			return nil, err
		}
		out.AlreadyRevoked = !created
		out.DenylistedUntil = &until
	}
	x.inactive(ReasonRevoked)
	x.Detail = "revoked now"
	if out.FamilyRevoked {
		x.Detail = "revoked now, with its whole family"
	} else if out.AlreadyRevoked {
		x.Detail = m.explain(&x, raw)
	}
	return out, nil
}

// ActiveOpaqueAccess returns the stored opaque access token raw if it is
// active now and its client's registration still lives, nil otherwise
// (unknown, malformed, expired, revoked, a refresh token, or a client
// deleted since). Only a failing store is an error.
func (m *Tokens) ActiveOpaqueAccess(ctx context.Context, raw string) (*latch.Token, error) {
	t, err := m.findOpaque(ctx, raw)
	if err != nil || t == nil || t.Kind != latch.KindAccess || !t.Active(m.now()) {
		return nil, err
	}
	live, err := m.ofLiveRegistration(ctx, t.ClientID, t.RegistrationID)
	if err != nil || !live {
		return nil, err
	}
	return t, nil
}

// SignExchanged signs the JWT access token that RFC 8693 token exchange
// gives actor for the opaque access token t, with the audiences and scope
// already narrowed, living from iat to exp. The subject token's client
// stays client_id; the exchanging client is the actor (§4.1).
func (m *Tokens) SignExchanged(t *latch.Token, actor *latch.Client, aud, scope []string, iat, exp time.Time) (string, error) {
	extra := map[string]any{"act": map[string]string{"sub": actor.ID}}
	if t.RegistrationID != "" {
		extra[ClaimRegistration] = t.RegistrationID
	}
	raw, _, err := m.signAccessToken(t.Subject, t.ClientID, aud, strings.Join(scope, " "), iat, exp, extra)
	return raw, err
}

// RevokeResult is what RevokeForClient did with a token, as the
// revocation endpoint's metrics count it.
type RevokeResult string

const (
	RevokeRevoked     RevokeResult = "revoked"     // the token is revoked now
	RevokeFamily      RevokeResult = "family"      // a refresh token: its whole family is revoked
	RevokeUnknown     RevokeResult = "unknown"     // an opaque token not stored (unknown, expired or revoked)
	RevokeInvalid     RevokeResult = "invalid"     // a JWT that does not verify (foreign, expired, forged)
	RevokeRefused     RevokeResult = "refused"     // issued to another client: nothing written
	RevokeUnsupported RevokeResult = "unsupported" // an encrypted token, whose jti this server cannot read
)

// RevokeForClient revokes raw on the authority of the client clientID, by
// RFC 7009 §2: a client may revoke only tokens issued to it; an invalid,
// unknown or expired token leaves nothing to revoke (§2.2), which is not
// an error. format (opaque, jwe, jwt) and the result label the metrics.
// Only a failing store is an error.
func (m *Tokens) RevokeForClient(ctx context.Context, raw, clientID string) (format string, _ RevokeResult, _ error) {
	if token.IsOpaque(raw) {
		t, err := m.findOpaque(ctx, raw)
		switch {
		case err != nil:
			return FormatOpaque, "", err
		case t == nil:
			return FormatOpaque, RevokeUnknown, nil
		case t.ClientID != clientID:
			return FormatOpaque, RevokeRefused, nil
		}
		family, err := m.revokeOpaque(ctx, t)
		if err != nil {
			return FormatOpaque, "", err
		}
		if family {
			return FormatOpaque, RevokeFamily, nil
		}
		return FormatOpaque, RevokeRevoked, nil
	}
	if token.IsCompactJWE(raw) {
		// An encrypted access token hides its jti from this server (only
		// the resource server holds the key), so there is nothing to
		// denylist. Answering 200 would tell the client it is revoked
		// while it stays valid until exp: say so instead (RFC 7009
		// §2.2.1). docs/security.md lists what works instead.
		return FormatJWE, RevokeUnsupported, nil
	}
	claims, err := m.verifyJWT(ctx, raw)
	if errors.Is(err, token.ErrNotYetValid) || errors.Is(err, token.ErrIssuedInFuture) {
		// Signed by us, but by a node whose clock runs ahead of this
		// one's: once the clocks agree the token is valid, so it must be
		// denylisted now. Answering 200 without recording the revocation
		// would let it pass later everywhere.
		claims, err = m.verifyJWTLeeway(ctx, raw, KeySet{m.Keys}, false, revocationClockSkew)
	}
	if err != nil {
		return FormatJWT, RevokeInvalid, nil
	}
	if claims.ClientID != clientID {
		return FormatJWT, RevokeRefused, nil
	}
	if _, _, err := m.revokeJWT(ctx, claims); err != nil {
		return FormatJWT, "", err
	}
	return FormatJWT, RevokeRevoked, nil
}

// IssueRequest asks Tokens.Issue for an access token, as a
// client_credentials grant of the client would get it.
type IssueRequest struct {
	ClientID string
	// Scope is space-delimited; empty asks for no scope.
	Scope string
	// Audiences are the requested audiences (RFC 8707 resource or
	// audience); none asks for the client's first registered audience.
	Audiences []string
	// TTL shortens the token's lifetime; zero is the client's lifetime,
	// which it may not exceed.
	TTL time.Duration
}

// Issued is what Tokens.Issue minted: the token endpoint's response.
type Issued struct {
	oauth.TokenResponse
	// FingerprintCookie is set for a client registered with
	// TokenFingerprint: the cookie ("__Host-latch_fgp=VALUE") whose
	// SHA-256 the token's fgp claim holds; a verifier that checks
	// fingerprints accepts the token only with it (security invariant 8).
	FingerprintCookie string `json:"fingerprint_cookie,omitempty"`
	// Format is the access token's format, the client's.
	Format latch.TokenFormat `json:"-"`
	// Encrypted is true when the token is encrypted to the client's
	// resource server: this server cannot introspect or revoke it by value.
	Encrypted bool `json:"-"`
}

// Issue mints an access token for the registered client req.ClientID on
// the operator's authority, without the client's secret, exactly as the
// client_credentials grant does: the client must be registered for the
// grant, the scope and audiences within its registration, and the token
// is in the client's format, lifetime, fingerprint binding and encryption.
// Refusals are EINVALID errors (ENOTFOUND for an unknown client) whose
// message says what to change.
func (m *Tokens) Issue(ctx context.Context, req IssueRequest) (*Issued, error) {
	if m.Issuer == "" {
		return nil, latch.Errorf(latch.EINVALID, "token: the issuer is required to issue a token: give the one the server runs with, or its tokens will not verify")
	}
	if err := oauth.CheckIssuerURL(m.Issuer); err != nil {
		return nil, latch.Errorf(latch.EINVALID, "token: %v", err)
	}
	if req.TTL < 0 || req.TTL > 0 && req.TTL < time.Second {
		return nil, latch.Errorf(latch.EINVALID, "token: lifetime %v: give at least 1s, or 0 for the client's", req.TTL)
	}
	c, err := m.client(ctx, req.ClientID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, latch.Errorf(latch.ENOTFOUND, "token: no client %s; `latch client list` shows the registered ones", oauth.Quote(req.ClientID))
	} else if err != nil {
		return nil, err
	}
	at, err := m.ClientCredentials(ctx, c, req.Scope, req.Audiences, req.TTL)
	var oerr *oauth.Error
	if errors.As(err, &oerr) {
		// The operator may read the registration: say what it allows.
		return nil, latch.Errorf(latch.EINVALID, "token: client %s: %s (%s); it is registered for grants %s, scope %s, audiences %s",
			oauth.Quote(c.ID), oerr.Description, oerr.Code, oauth.Quote(strings.Join(c.GrantTypes, " ")), oauth.Quote(strings.Join(c.Scopes, " ")), oauth.Quote(strings.Join(c.Audiences, " ")))
	} else if err != nil {
		return nil, err
	}
	out := &Issued{TokenResponse: *at.Response, Format: at.Format, Encrypted: at.Format == latch.FormatJWT && len(c.AccessTokenEncryptionKey) > 0}
	if at.Cookie != "" {
		out.FingerprintCookie, _, _ = strings.Cut(at.Cookie, ";")
	}
	return out, nil
}

// ClientCredentials mints an access token for c as RFC 6749 §4.4 grants
// one, and stores it when it is opaque: c must be registered for the
// grant, scope and audiences within its registration. ttl, when not zero,
// shortens the client's lifetime (the CLI's --ttl; the endpoint has no
// such parameter). Refusals are oauth errors.
func (m *Tokens) ClientCredentials(ctx context.Context, c *latch.Client, scope string, audiences []string, ttl time.Duration) (Minted, error) {
	if !c.AllowsGrant(latch.GrantClientCredentials) {
		return Minted{}, oauth.BadRequest(oauth.ErrUnauthorizedClient, "client is not registered for the client_credentials grant")
	}
	sc, aud, err := m.CheckScopeAndAudience(ctx, c, scope, audiences)
	if err != nil {
		return Minted{}, err
	}
	lifetime := m.accessTokenTTL(c)
	if ttl > lifetime {
		return Minted{}, oauth.BadRequest(oauth.ErrInvalidRequest, fmt.Sprintf("requested lifetime %v exceeds the client's access-token lifetime of %v", ttl, lifetime))
	}
	if ttl > 0 {
		lifetime = ttl
	}
	at, err := m.mintAccessToken(c, c.ID, sc, aud, "", m.now().Truncate(time.Second), lifetime, nil)
	if err != nil {
		return Minted{}, err
	}
	if at.Issue.Access != nil {
		if err := m.Store.CreateToken(ctx, at.Issue.Access); err != nil {
			return Minted{}, err
		}
	}
	return at, nil
}

// CheckScopeAndAudience returns the scope granted (GrantScope) and the
// audiences of a token request, both within the client's registration:
// the checks of every grant that starts from the client's own
// registration rather than from a previous grant.
func (m *Tokens) CheckScopeAndAudience(ctx context.Context, c *latch.Client, scope string, audiences []string) ([]string, []string, error) {
	sc, oerr := oauth.SplitScope(scope)
	if oerr != nil {
		return nil, nil, oerr
	}
	sc, err := m.GrantScope(ctx, c, sc)
	if err != nil {
		return nil, nil, err
	}
	aud, err := CheckAudience(c, audiences)
	if err != nil {
		return nil, nil, err
	}
	return sc, aud, nil
}

// CheckAudience resolves the audiences of a token request; without any it
// is the client's first registered audience.
func CheckAudience(c *latch.Client, want []string) ([]string, error) {
	for _, a := range want {
		if a == "" || len(a) > 512 {
			return nil, oauth.BadRequest(oauth.ErrInvalidTarget, "empty or oversized audience")
		}
	}
	if len(want) == 0 {
		if len(c.Audiences) == 0 {
			return nil, oauth.BadRequest(oauth.ErrInvalidTarget, "client has no registered audience; register one with `latch client create --audience`")
		}
		return c.Audiences[:1], nil
	}
	if !c.AllowsAudience(want) {
		return nil, oauth.BadRequest(oauth.ErrInvalidTarget, "requested audience is not registered for the client")
	}
	return want, nil
}

// MintGrant builds the tokens of one step of family f for subject, neither
// stored (the caller stores them with the step): an access token in c's
// format and, when c may use refresh tokens, a refresh token of f, the
// successor of parent when parent is set (successorOf: a retried rotation
// gets the same token). The refresh token lives c's idle lifetime (default
// RefreshTokenTTL), never beyond the family's end.
func (m *Tokens) MintGrant(c *latch.Client, subject string, scope []string, f *latch.Family, now time.Time, parent string, extra map[string]any) (Minted, error) {
	at, err := m.mintAccessToken(c, subject, scope, f.Audience, f.ID, now, m.accessTokenTTL(c), extra)
	if err != nil || !c.AllowsGrant(latch.GrantRefreshToken) {
		return at, err
	}
	idle := c.RefreshTokenTTL
	if idle <= 0 {
		idle = cmp.Or(m.RefreshTokenTTL, DefaultRefreshTokenTTL)
	}
	exp := now.Add(idle)
	if f.ExpiresAt.Before(exp) {
		exp = f.ExpiresAt
	}
	var raw string
	if parent == "" {
		raw, err = token.NewOpaque(latch.KindRefresh, m.rand())
	} else {
		raw, err = successorOf(m.SuccessorKey, parent, f.ID)
	}
	if err != nil {
		return Minted{}, err
	}
	id, err := token.NewID(m.rand())
	if err != nil {
		return Minted{}, err
	}
	at.Issue.Refresh = &latch.Token{Hash: token.Hash(raw), Kind: latch.KindRefresh, ID: id, ClientID: c.ID, RegistrationID: c.RegistrationID,
		Subject: subject, Scope: f.Scope, Audience: f.Audience, FamilyID: f.ID, IssuedAt: now, ExpiresAt: exp}
	at.Response.RefreshToken = raw
	return at, nil
}

// Minted is what the token authority built for a grant, not yet stored.
type Minted struct {
	Response *oauth.TokenResponse
	// Issue holds the opaque Tokens to store, or the IssuedJWT a family
	// remembers.
	Issue  latch.Issue
	Format latch.TokenFormat
	// Cookie is the Set-Cookie of the fingerprint cookie, for a client
	// with TokenFingerprint (security invariant 8); the token response
	// carries it.
	Cookie string
}

// mintAccessToken builds an access token in c's format, living ttl,
// without storing it. familyID may be empty (no family). extra holds
// claims about the subject for a JWT (an opaque token's introspection
// answers the registered claims only).
func (m *Tokens) mintAccessToken(c *latch.Client, subject string, scope, aud []string, familyID string, now time.Time, ttl time.Duration, extra map[string]any) (Minted, error) {
	exp := now.Add(ttl)
	at := Minted{Response: &oauth.TokenResponse{TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), Scope: strings.Join(scope, " ")}}
	if c.AccessTokenFormat == latch.FormatOpaque {
		jti, err := token.NewID(m.rand())
		if err != nil {
			return Minted{}, err
		}
		raw, err := m.newOpaqueAccess()
		if err != nil {
			return Minted{}, err
		}
		at.Issue.Access = &latch.Token{Hash: token.Hash(raw), Kind: latch.KindAccess, ID: jti, ClientID: c.ID, RegistrationID: c.RegistrationID, Subject: subject,
			Scope: scope, Audience: aud, FamilyID: familyID, IssuedAt: now, ExpiresAt: exp}
		at.Response.AccessToken = raw
		at.Format = latch.FormatOpaque
		return at, nil
	}
	if c.TokenFingerprint {
		cookie, fgp, err := fingerprint(m.rand(), ttl)
		if err != nil {
			return Minted{}, err
		}
		if extra == nil {
			extra = map[string]any{}
		}
		extra[ClaimFingerprint] = fgp
		at.Cookie = cookie
	}
	if c.RegistrationID != "" {
		if extra == nil {
			extra = map[string]any{}
		}
		extra[ClaimRegistration] = c.RegistrationID
	}
	if len(extra) == 0 {
		extra = nil
	}
	raw, jti, err := m.signAccessToken(subject, c.ID, aud, at.Response.Scope, now, exp, extra)
	if err != nil {
		return Minted{}, err
	}
	if raw, err = SealAccessToken(c, raw); err != nil { // encrypt.go
		return Minted{}, err
	}
	// The denylist entry must outlive the token at any verifier that
	// allows the leeway, as for RFC 7009 revocation.
	at.Issue.JWT = &latch.IssuedJWT{Issuer: m.Issuer, JTI: jti, ExpiresAt: exp.Add(m.leeway())}
	at.Response.AccessToken = raw
	at.Format = latch.FormatJWT
	return at, nil
}

// newOpaqueAccess mints an opaque access token, tagged when there is a key.
func (m *Tokens) newOpaqueAccess() (string, error) {
	if len(m.TagKeys) > 0 && m.TagKeys[0] != nil {
		return token.NewTaggedOpaque(latch.KindAccess, m.TagKeys[0], m.rand())
	}
	return token.NewOpaque(latch.KindAccess, m.rand())
}

// signAccessToken signs an RFC 9068 access token (§2.2 claims, typ at+jwt)
// with the current key and a fresh jti, which it returns so that a refresh
// family can remember the token for revocation. Every JWT access token
// latch issues, by any grant or by the CLI, is built here.
func (m *Tokens) signAccessToken(subject, clientID string, aud []string, scope string, iat, exp time.Time, extra map[string]any) (raw, jti string, err error) {
	signer, err := m.Signer()
	if err != nil {
		return "", "", err
	}
	if jti, err = token.NewID(m.rand()); err != nil {
		return "", "", err
	}
	raw, err = signer.Sign(token.TypeAccessToken, &token.Claims{
		Issuer: m.Issuer, Subject: subject, Audience: aud,
		ExpiresAt: exp.Unix(), IssuedAt: iat.Unix(), NotBefore: iat.Unix(),
		ID: jti, ClientID: clientID, Scope: scope, Extra: extra,
	})
	return raw, jti, err
}

// KeySet adapts the key manager to token.KeySet, turning "not found" into
// token.ErrUnknownKey.
type KeySet struct{ Keys *keys.Manager }

func (k KeySet) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	pub, alg, err := k.Keys.Key(ctx, kid)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: %v", token.ErrUnknownKey, err)
	}
	return pub, alg, err
}

// mayIntrospect is the introspection policy: whether caller may learn
// that a token issued to clientID for the audiences aud is active, and
// its claims (RFC 7662 §2.2 and §4: the server decides which tokens a
// caller may introspect). It may when it is the token's own client, or
// when it is registered for ScopeIntrospect and one of the token's
// audiences is among its registered audiences: it is a resource server of
// that audience, as token exchange asks of a gateway (exchange.go). Any
// other client learns nothing, not even that the token exists.
func mayIntrospect(caller *latch.Client, clientID string, aud []string) bool {
	if caller.ID == clientID {
		return true
	}
	if !slices.Contains(caller.Scopes, latch.ScopeIntrospect) {
		return false
	}
	for _, a := range aud {
		if slices.Contains(caller.Audiences, a) {
			return true
		}
	}
	return false
}

// ClaimFingerprint is the claim holding the lowercase hex SHA-256 of the
// fingerprint cookie's value.
const ClaimFingerprint = "fgp"

// ClaimRegistration is the private claim (RFC 7519 §4.3) of a JWT access
// token that holds the RegistrationID of its client: the token is active
// here only while the client with its client_id is that registration, so
// that deleting a client and registering another under the same ID does
// not bring the deleted one's tokens back. Absent for clients without one.
const ClaimRegistration = "latch_reg"

// registrationOf returns the registration a JWT's claims name; "" when
// they name none.
func registrationOf(c *token.Claims) string {
	s, _ := c.Extra[ClaimRegistration].(string)
	return s
}

// FingerprintCookie is the cookie that carries the raw fingerprint of a
// bound token (security invariant 8). __Host-: Secure, Path=/, no Domain, so
// no other host or path can set or shadow it (RFC 6265bis §4.1.3.2).
const FingerprintCookie = "__Host-latch_fgp"

// fingerprint returns a Set-Cookie value with 256 fresh random bits from
// r, base64url, and the hex SHA-256 of that cookie value for the fgp claim
// (OWASP JWT cheat sheet, token sidejacking).
func fingerprint(r io.Reader, ttl time.Duration) (setCookie, fgp string, err error) {
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", latch.Errorf(latch.EINTERNAL, "server: fingerprint: %v", err)
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(v))
	setCookie = FingerprintCookie + "=" + v + "; Path=/; Max-Age=" + strconv.FormatInt(int64(ttl/time.Second), 10) +
		"; Secure; HttpOnly; SameSite=Strict"
	return setCookie, hex.EncodeToString(sum[:]), nil
}

package token

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latch-auth/latch"
)

// MaxJWTSize is the largest JWT Verify reads, in bytes; a larger one is
// refused before any parsing (security invariant 10).
const MaxJWTSize = 8192

// Sentinel errors of Verify and ParseOpaque. Errors returned wrap one of them
// with detail; test with errors.Is.
var (
	ErrMalformed      = errors.New("token: malformed")
	ErrUnknownKey     = errors.New("token: unknown key")
	ErrAlgorithm      = errors.New("token: algorithm not allowed")
	ErrHeader         = errors.New("token: header parameter not allowed")
	ErrSignature      = errors.New("token: invalid signature")
	ErrType           = errors.New("token: wrong type")
	ErrExpired        = errors.New("token: expired")
	ErrNotYetValid    = errors.New("token: not yet valid")
	ErrIssuedInFuture = errors.New("token: issued in the future")
	ErrIssuer         = errors.New("token: wrong issuer")
	ErrAudience       = errors.New("token: wrong audience")
)

// KeySet is where Verify finds public keys. Implementations own key
// discovery (JWKS fetch, single-flight refresh, use/key_ops filtering); Verify
// never fetches anything itself.
type KeySet interface {
	// Key returns the public key published under kid and the one algorithm
	// it may be used with. An unknown kid returns an error wrapping
	// ErrUnknownKey. Keys are *ecdsa.PublicKey, ed25519.PublicKey or
	// *rsa.PublicKey.
	Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error)
}

// VerifyOptions say what Verify accepts. The zero value accepts nothing:
// Algorithms, Issuer and Audience must be set, or the checks skipped by name.
type VerifyOptions struct {
	// Issuer is the exact iss the token must carry; required unless
	// SkipIssuerCheck.
	Issuer          string
	SkipIssuerCheck bool
	// Audience must be one of the token's aud values; required unless
	// SkipAudienceCheck.
	Audience          string
	SkipAudienceCheck bool
	// Type is the typ header the token must carry, e.g. "at+jwt" for access
	// tokens (RFC 9068 §4). It is compared case-insensitively and the
	// "application/" prefix is allowed on either side (RFC 7515 §4.1.9). ""
	// means typ is not checked at all; every verifier of access tokens must
	// set it, or an ID token would pass for one (RFC 8725 §3.11).
	Type string
	// Algorithms is the allow-list. A token's alg must be in it and equal
	// the algorithm the KeySet returns for the key (RFC 8725 §3.1).
	Algorithms []latch.Algorithm
	// Leeway is the clock skew tolerated on exp, nbf and iat, in whole
	// seconds (NumericDate has no finer unit).
	Leeway time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// AllowExpired skips the exp check (every other check stays), for an
	// operator's tool that reads an expired token's claims to say whose it
	// was. Never set it where the answer grants access.
	AllowExpired bool
}

func (o *VerifyOptions) validate() error {
	if len(o.Algorithms) == 0 {
		return errors.New("token: VerifyOptions.Algorithms is empty; set the algorithms your keys use")
	}
	for _, a := range o.Algorithms {
		if _, ok := specFor(string(a)); !ok {
			return fmt.Errorf("token: VerifyOptions.Algorithms: unsupported algorithm %q", a)
		}
	}
	if o.Issuer == "" && !o.SkipIssuerCheck {
		return errors.New("token: VerifyOptions.Issuer is required unless SkipIssuerCheck")
	}
	if o.Audience == "" && !o.SkipAudienceCheck {
		return errors.New("token: VerifyOptions.Audience is required unless SkipAudienceCheck")
	}
	if o.Leeway < 0 {
		return errors.New("token: VerifyOptions.Leeway is negative")
	}
	return nil
}

func (o *VerifyOptions) allows(alg latch.Algorithm) bool {
	for _, a := range o.Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// Verify checks a compact JWS JWT and returns its claims. The checks, in
// order, each refuse with the sentinel in brackets:
//
//   - size at most MaxJWTSize, exactly three segments, each strict base64url
//     without padding [ErrMalformed] (RFC 7515 §7.1; RFC 8725 §3.10);
//   - the header is a JSON object without duplicate members [ErrMalformed]
//     (RFC 7515 §5.2 step 4), holding only alg, kid and typ: a jwk, jku,
//     x5u, x5c, x5t, x5t#S256, crit, b64 or any other member is refused
//     [ErrHeader], so no key ever comes from the token and nothing is ever
//     fetched (RFC 8725 §3.10; RFC 7515 §4.1.11 for crit);
//   - alg is one latch implements and is in opts.Algorithms; none in any
//     casing, HS* and anything else are refused [ErrAlgorithm] (RFC 8725
//     §3.1, §3.2);
//   - typ matches opts.Type [ErrType] (RFC 8725 §3.11, RFC 9068 §4);
//   - kid is present [ErrHeader] and known to keys [ErrUnknownKey];
//   - the key's algorithm is the token's alg and the key fits it
//     [ErrAlgorithm] (RFC 8725 §3.1: the key decides, not the token);
//   - the signature has the exact length and verifies [ErrSignature]; only
//     then is the payload read as JSON (RFC 7515 §5.2 steps 7-8);
//   - the claims are a JSON object without duplicates and carry exp and iat
//     [ErrMalformed]; iss [ErrIssuer], aud [ErrAudience] (RFC 7519 §4.1.3,
//     RFC 8725 §3.9), exp [ErrExpired], nbf [ErrNotYetValid] and iat
//     [ErrIssuedInFuture] are checked, times with opts.Leeway (RFC 7519
//     §4.1.4-6, RFC 9068 §4).
//
// A misconfigured opts yields an error that wraps none of the sentinels.
func Verify(ctx context.Context, raw string, keys KeySet, opts VerifyOptions) (*Claims, error) {
	payload, _, err := verifyJWS(ctx, raw, keys, &opts)
	if err != nil {
		return nil, err
	}
	c := new(Claims)
	present, err := c.parse(payload)
	if err != nil {
		return nil, err
	}
	if err := checkClaims(c, present, &opts); err != nil {
		return nil, err
	}
	return c, nil
}

// header is the part of the protected header Verify reads.
type header struct {
	alg    latch.Algorithm
	kid    string
	typ    string
	hasKid bool
	hasTyp bool
}

// verifyJWS is Verify up to and including the signature: it returns the
// decoded payload, which it has not interpreted. The Wycheproof JWS vectors,
// whose payloads are not claims, run through it.
func verifyJWS(ctx context.Context, raw string, keys KeySet, opts *VerifyOptions) ([]byte, header, error) {
	// Size first, before any work proportional to the input.
	if len(raw) > MaxJWTSize {
		return nil, header{}, fmt.Errorf("token: JWT of %d bytes exceeds %d: %w", len(raw), MaxJWTSize, ErrMalformed)
	}
	if err := opts.validate(); err != nil {
		return nil, header{}, err
	}
	if keys == nil {
		return nil, header{}, errors.New("token: Verify needs a KeySet")
	}
	data, dot1, dot2, err := split(raw)
	if err != nil {
		return nil, header{}, err
	}
	hSeg, pSeg, sSeg := data[:dot1], data[dot1+1:dot2], data[dot2+1:]
	var h header
	if err := decodeHeader(hSeg, &h); err != nil {
		return nil, header{}, err
	}

	spec, ok := specFor(string(h.alg))
	if !ok || !opts.allows(h.alg) {
		return nil, header{}, fmt.Errorf("token: alg %q: %w", h.alg, ErrAlgorithm)
	}
	if opts.Type != "" && (!h.hasTyp || !sameType(h.typ, opts.Type)) {
		return nil, header{}, fmt.Errorf("token: typ %q, want %q: %w", h.typ, opts.Type, ErrType)
	}
	if !h.hasKid {
		return nil, header{}, fmt.Errorf("token: JWT header has no kid: %w", ErrHeader)
	}

	pub, keyAlg, err := keys.Key(ctx, h.kid)
	if err != nil {
		return nil, header{}, fmt.Errorf("token: key %q: %w", h.kid, err)
	}
	// The key, not the token, says which algorithm it is for: a token that
	// names another allowed algorithm is refused even if the math would
	// work (RFC 8725 §3.1, §2.1).
	if keyAlg != h.alg {
		return nil, header{}, fmt.Errorf("token: alg %q but key %q is for %q: %w", h.alg, h.kid, keyAlg, ErrAlgorithm)
	}
	sigLen, err := spec.checkKey(pub)
	if err != nil {
		return nil, header{}, fmt.Errorf("token: key %q: %v: %w", h.kid, err, ErrAlgorithm)
	}
	if len(sSeg) != b64.EncodedLen(sigLen) {
		return nil, header{}, fmt.Errorf("token: %s signature is not %d bytes: %w", h.alg, sigLen, ErrSignature)
	}
	var sbuf [1024]byte // RSA up to 8192 bits
	if sigLen > len(sbuf) {
		return nil, header{}, fmt.Errorf("token: %s key of %d bytes is too large: %w", h.alg, sigLen, ErrAlgorithm)
	}
	if n, err := b64.Decode(sbuf[:], sSeg); err != nil || n != sigLen {
		return nil, header{}, fmt.Errorf("token: JWT signature is not canonical base64url: %w", ErrMalformed)
	}
	// The payload's base64 is checked before the signature, which is cheap
	// and refuses non-canonical encodings (two strings, one token) early;
	// its JSON is read only after the signature verifies.
	payload := make([]byte, b64.DecodedLen(len(pSeg)))
	pn, err := b64.Decode(payload, pSeg)
	if err != nil {
		return nil, header{}, fmt.Errorf("token: JWT payload is not canonical base64url: %w", ErrMalformed)
	}
	if !spec.verify(pub, data[:dot2], sbuf[:sigLen]) {
		return nil, header{}, fmt.Errorf("token: key %q: %w", h.kid, ErrSignature)
	}
	return payload[:pn], h, nil
}

// split finds the three segments of a compact JWS (RFC 7515 §7.1): exactly
// three, so a JWE (five) or a JWS with a part missing is not a latch token.
// It returns raw as bytes, once, for the decoders and the signature check.
func split(raw string) (data []byte, dot1, dot2 int, err error) {
	dot1 = strings.IndexByte(raw, '.')
	if dot1 < 0 {
		return nil, 0, 0, fmt.Errorf("token: JWT has 1 segment, want 3: %w", ErrMalformed)
	}
	dot2 = strings.IndexByte(raw[dot1+1:], '.')
	if dot2 < 0 {
		return nil, 0, 0, fmt.Errorf("token: JWT has 2 segments, want 3: %w", ErrMalformed)
	}
	dot2 += dot1 + 1
	if strings.IndexByte(raw[dot2+1:], '.') >= 0 {
		return nil, 0, 0, fmt.Errorf("token: JWT has more than 3 segments: %w", ErrMalformed)
	}
	return []byte(raw), dot1, dot2, nil
}

// maxHeaderSize bounds the decoded protected header; latch's are under 100
// bytes.
const maxHeaderSize = 1024

// decodeHeader decodes and parses the protected header segment.
func decodeHeader(seg []byte, h *header) error {
	if len(seg) > b64.EncodedLen(maxHeaderSize) {
		return fmt.Errorf("token: JWT header exceeds %d bytes: %w", maxHeaderSize, ErrMalformed)
	}
	var buf [maxHeaderSize]byte
	n, err := b64.Decode(buf[:], seg)
	if err != nil {
		return fmt.Errorf("token: JWT header is not canonical base64url: %w", ErrMalformed)
	}
	return parseHeader(buf[:n], h)
}

// parseHeader reads the protected header (RFC 7515 §4). b is decoded JSON;
// nothing of it is retained but kid.
func parseHeader(b []byte, h *header) error {
	if !json.Valid(b) {
		return fmt.Errorf("token: JWT header is not valid JSON: %w", ErrMalformed)
	}
	i := skipWS(b, 0)
	if b[i] != '{' {
		return fmt.Errorf("token: JWT header is not a JSON object: %w", ErrMalformed)
	}
	i = skipWS(b, i+1)
	const (
		seenAlg = 1 << iota
		seenKid
		seenTyp
	)
	seen := 0
	for b[i] != '}' {
		end := skipString(b, i)
		name := b[i+1 : end-1]
		if !simpleString(name) {
			// An escaped name ("\u0061lg") is still that name: unescape it
			// so it cannot slip past the duplicate and denylist checks.
			n, err := unquote(string(b[i:end]))
			if err != nil {
				return err
			}
			name = []byte(n)
		}
		i = skipWS(b, end)
		i = skipWS(b, i+1) // ':'
		end = skipValue(b, i)
		val := b[i:end]
		var bit int
		switch string(name) {
		case "alg":
			bit = seenAlg
		case "kid":
			bit = seenKid
		case "typ":
			bit = seenTyp
		case "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256":
			// RFC 8725 §3.10, security invariant 1: keys come from the
			// KeySet only; a token never names or carries its own key.
			return fmt.Errorf("token: JWT header has %q: %w", string(name), ErrHeader)
		case "crit", "b64":
			// RFC 7515 §4.1.11: we understand no extension, so any crit
			// must be refused; b64 (RFC 7797) changes the signing input
			// and only appears with crit.
			return fmt.Errorf("token: JWT header has %q: %w", string(name), ErrHeader)
		default:
			// latch emits alg, kid and typ only. Anything else means the
			// token is not ours or is an attempt at a parameter some other
			// library would act on; refusing keeps one meaning per token.
			return fmt.Errorf("token: JWT header has unknown parameter %q: %w", string(name), ErrHeader)
		}
		if seen&bit != 0 {
			return fmt.Errorf("token: JWT header repeats %q: %w", string(name), ErrMalformed)
		}
		seen |= bit
		if val[0] != '"' {
			return fmt.Errorf("token: JWT header %q is not a string: %w", string(name), ErrHeader)
		}
		var s string
		if body := val[1 : len(val)-1]; simpleString(body) && bit != seenKid {
			// alg and typ are compared, not kept: no allocation for
			// the constants they match.
			s = internHeaderValue(body)
		} else {
			var err error
			if s, err = unquote(string(val)); err != nil {
				return err
			}
		}
		switch bit {
		case seenAlg:
			h.alg = latch.Algorithm(s)
		case seenKid:
			h.kid, h.hasKid = s, true
		case seenTyp:
			h.typ, h.hasTyp = s, true
		}
		i = skipWS(b, end)
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	if seen&seenAlg == 0 {
		return fmt.Errorf("token: JWT header has no alg: %w", ErrAlgorithm)
	}
	return nil
}

// internHeaderValue returns the constant for the usual alg and typ values,
// and a copy otherwise.
func internHeaderValue(b []byte) string {
	switch string(b) {
	case "ES256":
		return "ES256"
	case "EdDSA":
		return "EdDSA"
	case "RS256":
		return "RS256"
	case "PS256":
		return "PS256"
	case "at+jwt":
		return "at+jwt"
	case "JWT":
		return "JWT"
	}
	return string(b)
}

func simpleString(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// sameType compares media types as RFC 7515 §4.1.9 asks: case-insensitively,
// and with "application/" implied when there is no other '/'.
func sameType(got, want string) bool {
	return strings.EqualFold(trimApplication(got), trimApplication(want))
}

func trimApplication(t string) string {
	const p = "application/"
	if len(t) > len(p) && strings.EqualFold(t[:len(p)], p) && !strings.Contains(t[len(p):], "/") {
		return t[len(p):]
	}
	return t
}

// checkClaims applies RFC 7519 §4.1 and RFC 9068 §4 to verified claims.
func checkClaims(c *Claims, present uint16, opts *VerifyOptions) error {
	// RFC 9068 §2.2: exp and iat are required; without exp a token would
	// live forever.
	if present&hasExp == 0 {
		return fmt.Errorf("token: claims lack exp: %w", ErrMalformed)
	}
	if present&hasIat == 0 {
		return fmt.Errorf("token: claims lack iat: %w", ErrMalformed)
	}
	if !opts.SkipIssuerCheck && c.Issuer != opts.Issuer {
		return fmt.Errorf("token: iss %q, want %q: %w", c.Issuer, opts.Issuer, ErrIssuer)
	}
	if !opts.SkipAudienceCheck && !c.Audience.Contains(opts.Audience) {
		return fmt.Errorf("token: aud %q lacks %q: %w", []string(c.Audience), opts.Audience, ErrAudience)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	// Whole seconds, and arranged so that no sum involves a claim: a claim
	// near MaxInt64 must not overflow into the past.
	t := now().Unix()
	leeway := int64(opts.Leeway / time.Second)
	if !opts.AllowExpired && t-leeway >= c.ExpiresAt {
		return fmt.Errorf("token: exp %d is past (now %d): %w", c.ExpiresAt, t, ErrExpired)
	}
	if present&hasNbf != 0 && t+leeway < c.NotBefore {
		return fmt.Errorf("token: nbf %d is ahead (now %d): %w", c.NotBefore, t, ErrNotYetValid)
	}
	if t+leeway < c.IssuedAt {
		return fmt.Errorf("token: iat %d is ahead (now %d): %w", c.IssuedAt, t, ErrIssuedInFuture)
	}
	return nil
}

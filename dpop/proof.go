package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// Type is the typ header of a DPoP proof (RFC 9449 §4.2).
const Type = "dpop+jwt"

// Scheme is the Authorization scheme of a DPoP-bound access token
// (RFC 9449 §7.1) and the token_type of a bound token response (§5).
const Scheme = "DPoP"

// HeaderName is the request header that carries the proof (RFC 9449 §4.1)
// and NonceHeader the response header that carries a server nonce (§8, §9).
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// Defaults of Config.
const (
	// DefaultMaxAge is how old a proof's iat may be: a proof is made for
	// one request, sent at once.
	DefaultMaxAge = 60 * time.Second
	// DefaultLeeway is how far ahead of this clock a proof's iat may be.
	DefaultLeeway = 5 * time.Second
	// DefaultReplayEntries bounds NewMemoryReplayCache's live entries.
	DefaultReplayEntries = 100_000

	// MaxProofSize is the largest proof read, in bytes; a larger one is
	// refused before any parsing. An RSA-8192 jwk fits.
	MaxProofSize = 8192
	// maxJTI bounds the jti kept in the replay cache.
	maxJTI        = 256
	maxAgeCeiling = 10 * time.Minute
)

// DefaultAlgorithms are the proof algorithms accepted when
// Config.Algorithms is empty: every asymmetric algorithm latch implements.
var DefaultAlgorithms = []latch.Algorithm{latch.ES256, latch.EdDSA, latch.PS256, latch.RS256}

// Sentinel errors of Check, one per check of RFC 9449 §4.3; the error
// returned wraps one of them with detail. Test with errors.Is.
var (
	ErrMalformed  = errors.New("dpop: malformed proof")                                // §4.3 steps 2-3
	ErrType       = errors.New("dpop: typ is not dpop+jwt")                            // step 4
	ErrAlgorithm  = errors.New("dpop: proof algorithm not allowed")                    // step 5
	ErrKey        = errors.New("dpop: jwk is not an allowed public key")               // step 7
	ErrSignature  = errors.New("dpop: proof signature invalid")                        // step 6
	ErrMethod     = errors.New("dpop: htm does not match the request method")          // step 8
	ErrURL        = errors.New("dpop: htu does not match the request URI")             // step 9
	ErrIssuedAt   = errors.New("dpop: iat outside the accepted window")                // step 11
	ErrNonce      = errors.New("dpop: nonce missing or not accepted")                  // step 10
	ErrTokenHash  = errors.New("dpop: ath does not match the access token")            // step 12
	ErrKeyBinding = errors.New("dpop: proof key is not the key the token is bound to") // step 12, §6
	ErrReplay     = errors.New("dpop: proof replayed")                                 // §11.1
	// ErrReplayUnavailable: the replay cache could not answer; the proof
	// is refused, and the request may succeed later.
	ErrReplayUnavailable = errors.New("dpop: replay cache unavailable")
)

// NonceChecker decides whether a proof's nonce is one this server handed
// out and still accepts (RFC 9449 §8, §9).
type NonceChecker interface {
	// Valid reports whether nonce is current.
	Valid(nonce string) bool
	// Nonce returns the nonce a client should use now, sent in
	// DPoP-Nonce with a use_dpop_nonce error.
	Nonce() string
}

// Config configures a Checker. The zero value is usable: every field has a
// default.
type Config struct {
	// Algorithms are the proof signature algorithms accepted (RFC 9449
	// §4.3 step 5): asymmetric only; none and HS* cannot be configured.
	// Default DefaultAlgorithms.
	Algorithms []latch.Algorithm
	// MaxAge is how far in the past a proof's iat may be, and so the
	// proof's lifetime (RFC 9449 §4.3 step 11, §11.1). Default 60s; at most
	// 10m.
	MaxAge time.Duration
	// Leeway is how far in the future a proof's iat may be, for clocks a
	// little ahead. Default 5s; at most MaxAge.
	Leeway time.Duration
	// Replay remembers used proofs for their lifetime (RFC 9449 §11.1).
	// Default: a NewMemoryReplayCache of DefaultReplayEntries.
	Replay ReplayCache
	// Nonces, when set, makes a nonce required in every proof and checks it
	// (RFC 9449 §4.3 step 10, §9). nil: nonces are not used; a proof's
	// nonce claim is then ignored.
	Nonces NonceChecker
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Replay == nil {
		c.Replay = NewMemoryReplayCache(DefaultReplayEntries, c.Now)
	}
	return c
}

// Validate reports the first problem of c, after defaults.
func (c Config) Validate() error {
	if len(c.Algorithms) == 0 {
		return errors.New("dpop: Config.Algorithms is empty")
	}
	for i, a := range c.Algorithms {
		if !slices.Contains(latch.Algorithms, a) {
			return fmt.Errorf("dpop: Config.Algorithms: %q is not an asymmetric algorithm latch implements; use ES256, EdDSA, PS256 or RS256", a)
		}
		if slices.Contains(c.Algorithms[:i], a) {
			return fmt.Errorf("dpop: Config.Algorithms lists %q twice", a)
		}
	}
	if c.MaxAge <= 0 || c.MaxAge > maxAgeCeiling {
		return fmt.Errorf("dpop: Config.MaxAge %v is outside (0, %v]", c.MaxAge, maxAgeCeiling)
	}
	if c.Leeway < 0 || c.Leeway > c.MaxAge {
		return fmt.Errorf("dpop: Config.Leeway %v is outside [0, MaxAge %v]", c.Leeway, c.MaxAge)
	}
	return nil
}

// Checker checks DPoP proofs. It is safe for concurrent use.
type Checker struct {
	cfg  Config
	algs string // the algs of a WWW-Authenticate challenge

	mu      sync.RWMutex
	headers map[string]proofHeader // header segment -> its checked form
}

// maxCachedHeaders bounds the cache of checked proof headers: one per
// client key in use.
const maxCachedHeaders = 4096

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := make([]string, len(cfg.Algorithms))
	for i, a := range cfg.Algorithms {
		names[i] = string(a)
	}
	return &Checker{cfg: cfg, algs: strings.Join(names, " "), headers: make(map[string]proofHeader)}, nil
}

// Algorithms returns the accepted algorithms, space-separated, for the algs
// parameter of a DPoP challenge (RFC 9449 §7.1).
func (c *Checker) Algorithms() string { return c.algs }

// Nonce returns the nonce to send with a use_dpop_nonce error, "" when
// Config.Nonces is not set.
func (c *Checker) Nonce() string {
	if c.cfg.Nonces == nil {
		return ""
	}
	return c.cfg.Nonces.Nonce()
}

// Request is what a proof is checked against.
type Request struct {
	// Method is the HTTP method of the request (htm).
	Method string
	// URL is the request's URI as the client addressed it: absolute, with
	// scheme and host (htu). A query or fragment is ignored.
	URL string
	// AccessToken is the access token presented with the proof; "" when
	// there is none (at the token endpoint). When set, ath must be its hash
	// (RFC 9449 §4.3 step 12).
	AccessToken string
	// JKT is the thumbprint the access token is bound to (its cnf.jkt,
	// RFC 9449 §6.1); when set, the proof's key must have it.
	JKT string
}

// Proof is a checked proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key, base64url:
	// the cnf.jkt of a token bound to it.
	JKT string
	// Key is the proof's public key and Algorithm its signature algorithm.
	Key       crypto.PublicKey
	Algorithm latch.Algorithm
	ID        string    // jti
	IssuedAt  time.Time // iat
	Nonce     string    // nonce, "" when absent
}

var b64 = base64.RawURLEncoding.Strict()

// Check checks proof against req as RFC 9449 §4.3 lists, in its order
// (the replay check last, so that only proofs valid in every other way
// are remembered), and returns it. Each failure wraps the sentinel of its
// step (ErrMalformed, ErrType, ErrAlgorithm, ErrKey, ErrSignature,
// ErrMethod, ErrURL, ErrNonce, ErrIssuedAt, ErrTokenHash, ErrKeyBinding,
// ErrReplay, ErrReplayUnavailable).
func (c *Checker) Check(ctx context.Context, proof string, req Request) (*Proof, error) {
	p, err := c.parse(proof)
	if err != nil {
		return nil, err
	}
	if err := c.checkClaims(p, req); err != nil {
		return nil, err
	}
	// §11.1: the jti is remembered per key, so that one client's choice
	// of jti never refuses another's proof; with the rest of the proof
	// signed, a replay is the same key and the same jti.
	until := c.cfg.Now().Add(c.cfg.MaxAge + 2*c.cfg.Leeway)
	seen, err := c.cfg.Replay.Seen(ctx, p.JKT+" "+p.ID, until)
	if err != nil {
		if errors.Is(err, ErrReplayUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrReplayUnavailable, err)
	}
	if seen {
		return nil, fmt.Errorf("%w: jti %q was used before", ErrReplay, p.ID)
	}
	return &p.Proof, nil
}

// parsed is a proof whose signature verified, before its claims are
// judged.
type parsed struct {
	Proof
	htm, htu, ath string
	hasNonce      bool
}

// parse checks a proof's form, header and signature and reads its claims
// (RFC 9449 §4.3 steps 1-7), before any comparison with the request.
func (c *Checker) parse(proof string) (*parsed, error) {
	if len(proof) > MaxProofSize {
		return nil, fmt.Errorf("%w: %d bytes exceed %d", ErrMalformed, len(proof), MaxProofSize)
	}
	dot1 := strings.IndexByte(proof, '.')
	dot2 := -1
	if dot1 >= 0 {
		if i := strings.IndexByte(proof[dot1+1:], '.'); i >= 0 {
			dot2 = dot1 + 1 + i
		}
	}
	if dot2 < 0 || strings.IndexByte(proof[dot2+1:], '.') >= 0 {
		return nil, fmt.Errorf("%w: not a compact JWS of three segments", ErrMalformed)
	}
	h, err := c.header(proof[:dot1])
	if err != nil {
		return nil, err
	}
	a, k := h.alg, h.key
	sig, err := b64.DecodeString(proof[dot2+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not canonical base64url", ErrMalformed)
	}
	payload, err := b64.DecodeString(proof[dot1+1 : dot2])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not canonical base64url", ErrMalformed)
	}
	if err := token.VerifySignature(a, k.pub, []byte(proof[:dot2]), sig); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	p := &parsed{Proof: Proof{JKT: k.jkt, Key: k.pub, Algorithm: a}}
	if err := p.parseClaims(payload); err != nil {
		return nil, err
	}
	return p, nil
}

// proofHeader is a checked protected header: its algorithm and key.
type proofHeader struct {
	alg latch.Algorithm
	key publicKey
}

// header returns the checked header of segment seg (§4.3 steps 2-5 and 7),
// from the cache when this exact segment passed before: a client sends
// the same header, its key, with every proof, and the same bytes always
// parse to the same key, so only the first costs the JSON and the curve
// point check.
func (c *Checker) header(seg string) (proofHeader, error) {
	c.mu.RLock()
	h, ok := c.headers[seg]
	c.mu.RUnlock()
	if ok {
		return h, nil
	}
	h, err := c.parseHeader(seg)
	if err != nil {
		return proofHeader{}, err
	}
	c.mu.Lock()
	if len(c.headers) >= maxCachedHeaders {
		for k := range c.headers { // any one: Go picks it at random
			delete(c.headers, k)
			break
		}
	}
	c.headers[strings.Clone(seg)] = h // seg is a slice of the whole proof
	c.mu.Unlock()
	return h, nil
}

func (c *Checker) parseHeader(seg string) (proofHeader, error) {
	hb, err := b64.DecodeString(seg)
	if err != nil {
		return proofHeader{}, fmt.Errorf("%w: header is not canonical base64url", ErrMalformed)
	}
	var typ, alg, jwk string
	var hasTyp, hasAlg bool
	err = token.EachMember(hb, func(name, raw string) error {
		var err error
		switch name {
		case "typ":
			typ, err = token.StringValue(raw)
			hasTyp = true
		case "alg":
			alg, err = token.StringValue(raw)
			hasAlg = true
		case "jwk":
			jwk = raw
		default:
			// kid, jku, x5c, crit...: a proof names its key by value only
			// (§4.2), and nothing here is understood as critical.
			return fmt.Errorf("header parameter %q is not allowed in a proof", name)
		}
		if err != nil {
			return fmt.Errorf("header %q is not a string", name)
		}
		return nil
	})
	if err != nil {
		return proofHeader{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	// §4.3 step 4; media types compare case-insensitively (RFC 7515
	// §4.1.9), with or without "application/".
	if !hasTyp || !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), Type) {
		return proofHeader{}, fmt.Errorf("%w: typ %q", ErrType, typ)
	}
	a := latch.Algorithm(alg)
	if !hasAlg || !slices.Contains(c.cfg.Algorithms, a) {
		return proofHeader{}, fmt.Errorf("%w: alg %q; accepted: %s", ErrAlgorithm, alg, c.algs)
	}
	if jwk == "" {
		return proofHeader{}, fmt.Errorf("%w: no jwk header", ErrKey)
	}
	k, err := parseJWK([]byte(jwk), a)
	if err != nil {
		return proofHeader{}, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return proofHeader{alg: a, key: k}, nil
}

// parseClaims reads the claims of §4.2: jti, htm, htu and iat required,
// ath and nonce optional, each of its JSON type; others are ignored.
func (p *parsed) parseClaims(payload []byte) error {
	var hasJTI, hasHTM, hasHTU, hasIAT bool
	err := token.EachMember(payload, func(name, raw string) error {
		var dst *string
		switch name {
		case "jti":
			dst, hasJTI = &p.ID, true
		case "htm":
			dst, hasHTM = &p.htm, true
		case "htu":
			dst, hasHTU = &p.htu, true
		case "ath":
			dst = &p.ath
		case "nonce":
			dst, p.hasNonce = &p.Nonce, true
		case "iat":
			// A JSON integer: digits only (a string, a fraction or an
			// exponent is refused; proofs carry whole seconds).
			sec, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || raw[0] < '0' || raw[0] > '9' || sec > 1<<40 {
				return fmt.Errorf("iat %s is not a NumericDate in whole seconds", raw)
			}
			p.IssuedAt, hasIAT = time.Unix(sec, 0), true
			return nil
		default:
			return nil
		}
		s, err := token.StringValue(raw)
		if err != nil {
			return fmt.Errorf("claim %q is not a string", name)
		}
		*dst = s
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	for _, c := range []struct {
		name string
		has  bool
	}{{"jti", hasJTI}, {"htm", hasHTM}, {"htu", hasHTU}, {"iat", hasIAT}} {
		if !c.has {
			return fmt.Errorf("%w: claim %q is missing", ErrMalformed, c.name)
		}
	}
	if p.ID == "" || len(p.ID) > maxJTI {
		return fmt.Errorf("%w: jti must be 1 to %d bytes", ErrMalformed, maxJTI)
	}
	return nil
}

// checkClaims applies §4.3 steps 8-12 against req.
func (c *Checker) checkClaims(p *parsed, req Request) error {
	// Step 8: methods are case-sensitive (RFC 9110 §9.1).
	if p.htm != req.Method {
		return fmt.Errorf("%w: htm %q, request %q", ErrMethod, p.htm, req.Method)
	}
	// Step 9. A client usually sends the URI exactly as the request's:
	// then there is nothing to normalize.
	if want := withoutQuery(req.URL); p.htu != want || !plainURI(want) {
		want, err := NormalizeHTU(req.URL)
		if err != nil {
			return fmt.Errorf("dpop: request URL %q: %v", req.URL, err)
		}
		got, err := NormalizeHTU(p.htu)
		if err != nil || got != want {
			return fmt.Errorf("%w: htu %q, request %q", ErrURL, p.htu, want)
		}
	}
	// Step 10.
	if c.cfg.Nonces != nil && (!p.hasNonce || !c.cfg.Nonces.Valid(p.Nonce)) {
		return fmt.Errorf("%w", ErrNonce)
	}
	// Step 11.
	now := c.cfg.Now()
	if p.IssuedAt.Before(now.Add(-c.cfg.MaxAge)) {
		return fmt.Errorf("%w: iat %d is more than %v old", ErrIssuedAt, p.IssuedAt.Unix(), c.cfg.MaxAge)
	}
	if p.IssuedAt.After(now.Add(c.cfg.Leeway)) {
		return fmt.Errorf("%w: iat %d is in the future", ErrIssuedAt, p.IssuedAt.Unix())
	}
	// Step 12.
	if req.AccessToken != "" {
		if p.ath == "" {
			return fmt.Errorf("%w: the proof has no ath", ErrTokenHash)
		}
		sum := sha256.Sum256([]byte(req.AccessToken))
		var ath [sha256.Size]byte
		if n, err := b64.Decode(ath[:], []byte(p.ath)); err != nil || n != len(ath) || subtle.ConstantTimeCompare(ath[:], sum[:]) != 1 {
			return fmt.Errorf("%w: the proof was made for another token", ErrTokenHash)
		}
	}
	if req.JKT != "" && subtle.ConstantTimeCompare([]byte(p.JKT), []byte(req.JKT)) != 1 {
		return fmt.Errorf("%w: proof key %s, token bound to %s", ErrKeyBinding, p.JKT, req.JKT)
	}
	return nil
}

// TokenHash is the ath of a proof for accessToken: base64url of the
// SHA-256 of its ASCII (RFC 9449 §4.2).
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func withoutQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// plainURI reports whether u is already in the form NormalizeHTU gives,
// as far as a cheap look can tell: "http://" or "https://", a host of
// lower-case letters, digits, '-' and '.' without a port, then a path of
// unreserved characters, sub-delims, ':' and '/' only (RFC 3986 §2.2,
// §2.3: nothing to decode or escape) without a dot segment. Two equal plain
// URIs are equal after normalization too; FuzzNormalizeHTU checks that a
// plain URI is its own normal form.
func plainURI(u string) bool {
	var rest string
	switch {
	case strings.HasPrefix(u, "https://"):
		rest = u[len("https://"):]
	case strings.HasPrefix(u, "http://"):
		rest = u[len("http://"):]
	default:
		return false
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return false
	}
	for i := 0; i < slash; i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	for i := slash; i < len(rest); i++ {
		c := rest[i]
		if !(isUnreserved(c) || c == '/' || c == ':' || strings.IndexByte("!$&'()*+,;=", c) >= 0) {
			return false
		}
	}
	return !strings.Contains(rest[slash:], "/.")
}

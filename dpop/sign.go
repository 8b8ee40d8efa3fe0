package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// Prover makes DPoP proofs (RFC 9449 §4.2) with one key: what a client,
// or the BFF, holding a DPoP key sends with each request. It is safe for
// concurrent use.
type Prover struct {
	key    crypto.Signer
	alg    latch.Algorithm
	jkt    string
	header string // base64url of the protected header and '.'
	rand   io.Reader
	now    func() time.Time
}

// NewProver returns a Prover for key: a P-256 ECDSA key signs ES256, an
// Ed25519 key EdDSA, an RSA key PS256.
func NewProver(key crypto.Signer) (*Prover, error) {
	if key == nil {
		return nil, errors.New("dpop: NewProver needs a key")
	}
	var alg latch.Algorithm
	var jwk map[string]string
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("dpop: only P-256 EC keys are supported")
		}
		b, err := pub.Bytes()
		if err != nil {
			return nil, fmt.Errorf("dpop: %v", err)
		}
		alg, jwk = latch.ES256, map[string]string{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(b[1:33]), "y": b64.EncodeToString(b[33:])}
	case ed25519.PublicKey:
		alg, jwk = latch.EdDSA, map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}
	case *rsa.PublicKey:
		alg, jwk = latch.PS256, map[string]string{"kty": "RSA", "n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
	default:
		return nil, fmt.Errorf("dpop: unsupported key type %T", pub)
	}
	jkt, err := Thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	h, err := json.Marshal(struct {
		Typ string            `json:"typ"`
		Alg latch.Algorithm   `json:"alg"`
		JWK map[string]string `json:"jwk"`
	}{Type, alg, jwk})
	if err != nil {
		return nil, fmt.Errorf("dpop: %v", err)
	}
	return &Prover{key: key, alg: alg, jkt: jkt, header: b64.EncodeToString(h) + ".", rand: rand.Reader, now: time.Now}, nil
}

// JKT returns the thumbprint of the Prover's key: the cnf.jkt of the
// tokens bound to it.
func (p *Prover) JKT() string { return p.jkt }

// Algorithm returns the proofs' alg.
func (p *Prover) Algorithm() latch.Algorithm { return p.alg }

// Proof returns a proof for one request: method and url as sent (the query
// and fragment are dropped from htu), accessToken the token it goes with
// ("" for none: then no ath), nonce the server's last DPoP-Nonce ("" for
// none). Its jti is 128 random bits.
func (p *Prover) Proof(method, url, accessToken, nonce string) (string, error) {
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	var id [16]byte
	if _, err := io.ReadFull(p.rand, id[:]); err != nil {
		return "", fmt.Errorf("dpop: jti: %w", err)
	}
	claims := struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{b64.EncodeToString(id[:]), method, url, p.now().Unix(), "", nonce}
	if accessToken != "" {
		claims.ATH = TokenHash(accessToken)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("dpop: %v", err)
	}
	input := p.header + b64.EncodeToString(payload)
	sig, err := token.SignSignature(p.alg, p.key, []byte(input))
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// WithClock returns a copy of p whose proofs take their iat from now.
func (p *Prover) WithClock(now func() time.Time) *Prover {
	q := *p
	q.now = now
	return &q
}

package authority

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

// Encrypted access tokens (private claims): for a client
// registered with an encryption key, the signed access token (a JWS, typ
// at+jwt) is encrypted to the resource server's public key as a nested JWT
// (RFC 7519 §5.2, §11.2): sign, then encrypt. The client and any browser
// holding the token see only the JWE header; the resource server decrypts
// with its private key (verify.Config.DecryptionKeys) and verifies the
// signature as usual. This server never holds the private key, so it cannot
// read these tokens back: see docs/security.md, "Encrypted access tokens".
const (
	// KeyEncryptionAlgorithm and ContentEncryption are the JWE algorithms
	// of encrypted access tokens (RFC 7518 §4.6, §5.3): an ephemeral-static
	// ECDH agreement wrapping a fresh AES-256 key, and AES-256-GCM.
	KeyEncryptionAlgorithm = jose.ECDH_ES_A256KW
	ContentEncryption      = jose.A256GCM
	// maxEncryptionKeyBytes bounds the registered JWK: an EC public key with
	// a kid is a few hundred bytes.
	maxEncryptionKeyBytes = 8 << 10
	maxEncryptionKidLen   = 256
)

// encryptionKey is a registered resource-server key, parsed and checked.
type encryptionKey struct {
	pub *ecdsa.PublicKey
	kid string // the JWK's kid, or its RFC 7638 thumbprint
}

// parseEncryptionKey checks a client's access_token_encryption_key: one
// public EC JWK (P-256, P-384 or P-521) meant for ECDH-ES+A256KW. A private
// key is refused: the authorization server must never hold the key that
// reads the tokens it is meant not to be able to show. X25519 (OKP) keys
// are refused because go-jose v4 implements ECDH-ES on NIST curves only.
func parseEncryptionKey(raw []byte) (*encryptionKey, error) {
	if len(raw) > maxEncryptionKeyBytes {
		return nil, fmt.Errorf("access token encryption key is larger than %d bytes", maxEncryptionKeyBytes)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, fmt.Errorf("access token encryption key must be one JWK (a JSON object), not a JWK Set or other JSON")
	}
	if _, ok := members["keys"]; ok {
		return nil, fmt.Errorf("access token encryption key must be one JWK, not a JWK Set: take the resource server's encryption key out of its \"keys\"")
	}
	for name := range members {
		// encoding/json, and so go-jose, matches member names without
		// regard to case: "D" is a private key too.
		if slices.Contains([]string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}, strings.ToLower(name)) {
			return nil, fmt.Errorf("access token encryption key holds private key material (%q): register the resource server's public key only; its private key must stay with the resource server", name)
		}
	}
	var kty, crv string
	_ = json.Unmarshal(members["kty"], &kty)
	_ = json.Unmarshal(members["crv"], &crv)
	if kty != "EC" {
		return nil, fmt.Errorf("access token encryption key has kty %q: it must be an EC key (P-256, P-384 or P-521) for %s; X25519 is not supported", kty, KeyEncryptionAlgorithm)
	}
	switch crv {
	case "P-256", "P-384", "P-521":
	default:
		return nil, fmt.Errorf("access token encryption key has crv %q: use P-256, P-384 or P-521", crv)
	}
	if ops, ok := members["key_ops"]; ok {
		var list []string
		if err := json.Unmarshal(ops, &list); err != nil {
			return nil, fmt.Errorf("access token encryption key: key_ops must be an array of strings")
		}
		// An ECDH public key exported by WebCrypto has key_ops []; one
		// marked for signing only is not for this.
		if len(list) > 0 && !slices.Contains(list, "deriveKey") && !slices.Contains(list, "deriveBits") {
			return nil, fmt.Errorf("access token encryption key: key_ops %q does not allow key agreement (deriveKey)", list)
		}
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("access token encryption key is not a valid JWK: %v", err)
	}
	pub, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok || !jwk.Valid() {
		return nil, fmt.Errorf("access token encryption key is not a valid EC public key")
	}
	if jwk.Use != "" && jwk.Use != "enc" {
		return nil, fmt.Errorf("access token encryption key has use %q: it must be \"enc\" or absent", jwk.Use)
	}
	if jwk.Algorithm != "" && jwk.Algorithm != string(KeyEncryptionAlgorithm) {
		return nil, fmt.Errorf("access token encryption key has alg %q: latch encrypts with %s; set that or leave alg out", jwk.Algorithm, KeyEncryptionAlgorithm)
	}
	kid := jwk.KeyID
	if kid == "" {
		// RFC 7638: the resource server finds its key by the same
		// thumbprint (verify computes it for keys without a kid).
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("access token encryption key: thumbprint: %v", err)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	if len(kid) > maxEncryptionKidLen {
		return nil, fmt.Errorf("access token encryption key: kid is longer than %d characters", maxEncryptionKidLen)
	}
	for i := 0; i < len(kid); i++ {
		if kid[i] < 0x20 || kid[i] > 0x7e {
			return nil, fmt.Errorf("access token encryption key: kid must be printable ASCII")
		}
	}
	return &encryptionKey{pub: pub, kid: kid}, nil
}

// CheckEncryptionKey validates raw for registration and returns it in
// compact JSON, as it will be stored.
func CheckEncryptionKey(raw json.RawMessage) ([]byte, error) {
	if _, err := parseEncryptionKey(raw); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fmt.Errorf("access token encryption key: %v", err)
	}
	return b.Bytes(), nil
}

// encrypters caches one jose.Encrypter per registered key, keyed by the
// key's JSON as stored: parsing a JWK and checking its point is more work
// than the encryption itself, and the key of a client changes rarely. It
// memoizes a pure function of the key bytes, so it is shared by every
// server of the process. When full it is emptied: it holds at most the
// keys of the registered clients, whatever they are.
var encrypters = struct {
	sync.RWMutex
	m map[string]jose.Encrypter
}{m: map[string]jose.Encrypter{}}

const maxEncrypters = 4096

// encrypterFor returns the encrypter for a stored key. A go-jose encrypter
// only reads its fields while encrypting (each call draws its own ephemeral
// key and content key), so one serves concurrent requests.
func encrypterFor(raw []byte) (jose.Encrypter, error) {
	encrypters.RLock()
	e, ok := encrypters.m[string(raw)]
	encrypters.RUnlock()
	if ok {
		return e, nil
	}
	k, err := parseEncryptionKey(raw)
	if err != nil {
		// Validated at registration, so only a store edited by hand or a
		// stricter check of a later version gets here.
		return nil, latch.Errorf(latch.EINTERNAL, "server: the client's access token encryption key is unusable: %v", err)
	}
	opts := (&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT")
	e, err = jose.NewEncrypter(ContentEncryption, jose.Recipient{Algorithm: KeyEncryptionAlgorithm, Key: k.pub, KeyID: k.kid}, opts)
	if err != nil {
		return nil, latch.Errorf(latch.EINTERNAL, "server: access token encrypter: %v", err)
	}
	encrypters.Lock()
	if len(encrypters.m) >= maxEncrypters {
		clear(encrypters.m)
	}
	encrypters.m[string(raw)] = e
	encrypters.Unlock()
	return e, nil
}

// SealAccessToken returns the signed access token raw as issued to c:
// unchanged, or, when c has an access token encryption key, as a compact
// JWE (cty JWT) of it encrypted to that key.
func SealAccessToken(c *latch.Client, raw string) (string, error) {
	if len(c.AccessTokenEncryptionKey) == 0 {
		return raw, nil
	}
	e, err := encrypterFor(c.AccessTokenEncryptionKey)
	if err != nil {
		return "", err
	}
	obj, err := e.Encrypt([]byte(raw))
	if err != nil {
		return "", latch.Errorf(latch.EINTERNAL, "server: encrypt access token: %v", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", latch.Errorf(latch.EINTERNAL, "server: encrypt access token: %v", err)
	}
	return out, nil
}

// DescribeEncryptionKey says, for people, how tokens are encrypted to a
// registered key: "ECDH-ES+A256KW/A256GCM to P-256 key kid".
func DescribeEncryptionKey(raw []byte) string {
	k, err := parseEncryptionKey(raw)
	if err != nil {
		return "unusable key: " + err.Error()
	}
	return fmt.Sprintf("%s/%s to %s key %s", KeyEncryptionAlgorithm, ContentEncryption, k.pub.Curve.Params().Name, k.kid)
}

package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// TypeAccessToken is the JWT typ of access tokens (RFC 9068 §2.1). An ID
// token (typ JWT) or any other JWT signed by the same key is not one, so a
// verifier that requires this typ cannot be handed one in its place (RFC
// 8725 §3.11).
const TypeAccessToken = "at+jwt"

// ClaimFingerprint is the claim of a token bound to a browser: the
// lowercase hex SHA-256 of the value of the fingerprint cookie that the
// token response set (OWASP JWT cheat sheet, token sidejacking; security
// invariant 8). FingerprintCookie is the name of that cookie. __Host-:
// Secure, Path=/, no Domain, so no other host or path can set or shadow it
// (RFC 6265bis §4.1.3.2).
const (
	ClaimFingerprint  = "fgp"
	FingerprintCookie = "__Host-latch_fgp"
)

// IsCompactJWE reports whether raw is a compact JWE (RFC 7516 §7.1): five
// segments, the first a JSON header naming an enc. Garbage with four dots
// is not one, so it is judged (and refused) as the JWS it then claims to
// be. The authorization server and verify both classify tokens with it.
func IsCompactJWE(raw string) bool {
	if strings.Count(raw, ".") != 4 {
		return false
	}
	h, _, _ := strings.Cut(raw, ".")
	if len(h) > 4096 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return false
	}
	var hdr struct {
		Enc string `json:"enc"`
	}
	return json.Unmarshal(b, &hdr) == nil && hdr.Enc != ""
}

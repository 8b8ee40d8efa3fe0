package dpop

import "errors"

// Describe names the failed check of an error of Checker.Check for an
// error_description (RFC 9449 §7.1): short, qtext only, echoing nothing of
// the proof. The authorization server, verify and the gateway answer with
// it, so a client reads the same words from each.
func Describe(err error) string {
	for _, d := range []struct {
		err  error
		text string
	}{
		{ErrType, "the DPoP proof typ is not dpop+jwt"},
		{ErrAlgorithm, "the DPoP proof algorithm is not allowed"},
		{ErrKey, "the DPoP proof jwk is not an allowed public key"},
		{ErrSignature, "the DPoP proof signature is invalid"},
		{ErrMethod, "the DPoP proof htm does not match the request method"},
		{ErrURL, "the DPoP proof htu does not match the request URI"},
		{ErrIssuedAt, "the DPoP proof iat is outside the accepted window"},
		{ErrTokenHash, "the DPoP proof ath does not match the access token"},
		{ErrKeyBinding, "the DPoP proof key is not the key the token is bound to"},
		{ErrReplay, "the DPoP proof was used before"},
		{ErrNonce, "the DPoP proof nonce is missing or stale"},
		{ErrMalformed, "the DPoP proof is malformed"},
	} {
		if errors.Is(err, d.err) {
			return d.text
		}
	}
	return "the DPoP proof is invalid"
}

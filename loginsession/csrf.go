package loginsession

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// The labels of the two CSRF tokens: one keyed with the raw session ID,
// one with the pre-session login cookie. Distinct labels keep a token of
// one kind from ever serving as the other.
const (
	csrfLabel      = "latch csrf v1"
	loginCSRFLabel = "latch login csrf v1"
)

// CSRFToken is the synchronizer token of the forms of the session with the
// raw ID: HMAC-SHA256 keyed with the raw ID, in base64url. It is derived,
// not stored (latch.Session's doc says why), so any node checks any form.
func CSRFToken(raw string) string { return mac(raw, csrfLabel) }

// LoginCSRFToken is the login form's token, keyed with the raw value of
// the pre-session login cookie: only a page of the issuer's origin, which
// saw the cookie set, can have it (login CSRF).
func LoginCSRFToken(raw string) string { return mac(raw, loginCSRFLabel) }

func mac(raw, label string) string {
	m := hmac.New(sha256.New, []byte(raw))
	m.Write([]byte(label))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFMatches compares a submitted token with the expected one in
// constant time (security invariant 9).
func CSRFMatches(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

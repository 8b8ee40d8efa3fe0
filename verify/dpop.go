package verify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/oauth"
)

// ClaimConfirmation is the confirmation claim of a sender-constrained
// token (RFC 7800 §3.1); a DPoP-bound token carries the thumbprint of its
// key in its jkt member (RFC 9449 §6.1, §6.2).
const ClaimConfirmation = "cnf"

var (
	// ErrDPoPBound: a token bound to a DPoP key came without the DPoP
	// scheme and a proof (RFC 9449 §7.2), or to a service that does not
	// accept DPoP.
	ErrDPoPBound = errors.New("verify: the token is bound to a DPoP key")
	// ErrNotDPoPBound: a token without cnf.jkt came with the DPoP scheme.
	ErrNotDPoPBound = errors.New("verify: the token is not bound to a DPoP key")
	// ErrConfirmation: the token's cnf is not a binding this library can
	// check (no jkt, or another confirmation method such as x5t#S256): the
	// token is refused rather than used unbound.
	ErrConfirmation = errors.New("verify: the token's cnf claim is not a DPoP key binding")
)

// BoundKey returns the thumbprint the token is bound to, its cnf.jkt
// (RFC 9449 §6), "" for a token without cnf. A cnf that is not an object
// with a string jkt is ErrConfirmation.
func (c *Claims) BoundKey() (string, error) {
	v, ok := c.Extra[ClaimConfirmation]
	if !ok {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", ErrConfirmation
	}
	jkt, ok := m["jkt"].(string)
	if !ok || jkt == "" {
		return "", ErrConfirmation
	}
	return jkt, nil
}

// checkExternalURL checks Config.ExternalURL: an absolute http(s) URL
// without query, fragment or user info. It returns it without a trailing
// slash, ready to be joined with a request path.
func checkExternalURL(field, raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("verify: %s %q must be an absolute http or https URL without query, fragment or user info, e.g. https://api.example.com", field, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// requestURL is the URI of r as its client addressed it, for a proof's htu
// (RFC 9449 §4.3 step 9): external (the URL clients use, before any proxy)
// followed by the path this service received, or, without external, the
// scheme of this connection, the Host header and the path. X-Forwarded-*
// headers are never read: any client can send them.
func requestURL(r *http.Request, external string) string {
	if external != "" {
		return external + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// DPoPToken returns the access token and the proof of a request made with
// the DPoP scheme (RFC 9449 §7.1): Authorization: DPoP <token> and exactly
// one DPoP header. ok is false, with no error, when the Authorization
// header is not of the DPoP scheme. A malformed DPoP Authorization value
// is an error for 400 invalid_request; a missing or repeated DPoP header
// is an error for 401 invalid_dpop_proof (IsProofError). The middleware
// uses it; so can proxies that do their own authentication.
func DPoPToken(r *http.Request) (raw, proof string, ok bool, err error) {
	return dpopCredentials(r)
}

// IsProofError reports whether err, from DPoPToken, is a missing or
// repeated DPoP header (invalid_dpop_proof) rather than a malformed
// Authorization header (invalid_request).
func IsProofError(err error) bool {
	var ep errProof
	return errors.As(err, &ep)
}

// dpopCredentials reads the DPoP scheme of RFC 9449 §7.1: Authorization:
// DPoP <token> with exactly one DPoP header. ok is false when the
// Authorization header is not of the DPoP scheme.
func dpopCredentials(r *http.Request) (raw, proof string, ok bool, err error) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", "", false, nil
	}
	raw, ok, err = oauth.ParseCredentials(vals[0], dpop.Scheme)
	if !ok || err != nil {
		return "", "", ok, err
	}
	proofs := r.Header.Values(dpop.HeaderName)
	switch len(proofs) {
	case 0:
		return raw, "", true, errProof("the request has no DPoP proof header")
	case 1:
	default:
		return raw, "", true, errProof("the request has more than one DPoP header")
	}
	return raw, proofs[0], true, nil
}

// errProof is a missing or unusable DPoP header (invalid_dpop_proof); its
// text is sent as error_description.
type errProof string

func (e errProof) Error() string { return string(e) }

// DescribeProofError turns an error of dpop.Checker.Check into an
// error_description that names the failed check (RFC 9449 §7.1): short,
// qtext only, echoing nothing of the proof. The middleware uses it; so can
// proxies that check proofs themselves.
func DescribeProofError(err error) string { return describeProof(err) }

func describeProof(err error) string {
	var ep errProof
	if errors.As(err, &ep) {
		return string(ep)
	}
	return dpop.Describe(err)
}

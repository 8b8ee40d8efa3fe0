package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/verify"
)

// errBoundUnchecked: the token's cnf is not a DPoP binding the gateway can
// check; the token is refused rather than forwarded unbound.
var errBoundUnchecked = errors.New("gateway: the token's cnf is not a DPoP key binding")

// boundKey reads cnf.jkt (RFC 9449 §6.1) from the claims of a JWT the
// issuer's token endpoint just gave the gateway over TLS: it is not
// verified here (the upstream verifies it), only read. "" when the token
// is not bound; a cnf without a string jkt is errBoundUnchecked.
func boundKey(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		// A JWE (encrypted to the upstream) cannot be read here; the
		// opaque token it stands for is then treated as unbound.
		return "", nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		Cnf json.RawMessage `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	if len(c.Cnf) == 0 || string(c.Cnf) == "null" {
		return "", nil
	}
	var cnf map[string]any
	if json.Unmarshal(c.Cnf, &cnf) != nil {
		return "", errBoundUnchecked
	}
	jkt, ok := cnf["jkt"].(string)
	if !ok || jkt == "" {
		return "", errBoundUnchecked
	}
	return jkt, nil
}

// errDPoP is a refusal answered with a DPoP challenge (RFC 9449 §7.1).
type errDPoP struct {
	code, desc, nonce string
}

func (e errDPoP) Error() string { return "gateway: " + e.desc }

// checkBinding applies RFC 9449 §7 at the edge: a token bound to a key
// (jkt) must come with the DPoP scheme and a proof of that key made for
// this request and this token; a token that is not bound must not come
// with the DPoP scheme. raw is the token the client sent (the proof's ath
// is its hash), not the JWT that stands for it.
func (g *Gateway) checkBinding(r *http.Request, raw, proof string, isDPoP bool, jkt string) error {
	switch {
	case isDPoP && jkt == "":
		return errDPoP{code: "invalid_token", desc: "the token is not bound to a DPoP key"}
	case !isDPoP && jkt != "" && g.cfg.DPoP != nil:
		return errDPoP{code: "invalid_token", desc: "the token is bound to a DPoP key; send it with the DPoP scheme and a proof"}
	case !isDPoP && jkt != "":
		return errRefused("the token is bound to a DPoP key, which this gateway does not accept")
	case !isDPoP:
		return nil
	}
	base := g.externalURL
	if base == "" {
		// X-Forwarded-* are never read: any client can send them.
		base = "http://" + r.Host
		if r.TLS != nil {
			base = "https://" + r.Host
		}
	}
	_, err := g.cfg.DPoP.Check(r.Context(), proof, dpop.Request{Method: r.Method, URL: base + r.URL.EscapedPath(), AccessToken: raw, JKT: jkt})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dpop.ErrReplayUnavailable):
		return err
	case errors.Is(err, dpop.ErrNonce):
		return errDPoP{code: "use_dpop_nonce", desc: "the DPoP proof nonce is missing or stale", nonce: g.cfg.DPoP.Nonce()}
	case errors.Is(err, dpop.ErrKeyBinding):
		return errDPoP{code: "invalid_token", desc: "the DPoP proof key is not the key the token is bound to"}
	}
	return errDPoP{code: "invalid_dpop_proof", desc: verify.DescribeProofError(err)}
}

// dpopChallenge answers with WWW-Authenticate: DPoP (RFC 9449 §7.1), the
// accepted algs, and DPoP-Nonce for use_dpop_nonce.
func (g *Gateway) dpopChallenge(w http.ResponseWriter, e errDPoP) {
	h := w.Header()
	h.Set("WWW-Authenticate", `DPoP realm="`+g.cfg.Realm+`", error="`+e.code+`", error_description="`+e.desc+`", algs="`+g.cfg.DPoP.Algorithms()+`"`)
	if e.nonce != "" {
		h.Set(dpop.NonceHeader, e.nonce)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.desc})
}

// credentials returns the request's token: with the DPoP scheme and its
// proof when the gateway accepts DPoP, else a Bearer token.
func (g *Gateway) credentials(r *http.Request) (raw, proof string, isDPoP bool, err error) {
	if g.cfg.DPoP != nil {
		raw, proof, isDPoP, err = verify.DPoPToken(r)
		if isDPoP {
			if err != nil && verify.IsProofError(err) {
				return raw, "", true, errDPoP{code: "invalid_dpop_proof", desc: err.Error()}
			}
			return raw, proof, true, err
		}
	}
	raw, err = verify.BearerToken(r)
	return raw, "", false, err
}

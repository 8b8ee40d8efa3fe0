package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// ClaimConfirmation is the confirmation claim of a JWT access token bound
// to a DPoP key (RFC 7800 §3.1): {"jkt": thumbprint} (RFC 9449 §6.1).
const ClaimConfirmation = "cnf"

// Error codes of RFC 9449 §5 and §8 at the token and PAR endpoints, and
// of §7.1 in a DPoP challenge.
const (
	ErrInvalidDPoPProof = "invalid_dpop_proof"
	ErrUseDPoPNonce     = "use_dpop_nonce"
)

// DefaultDPoPNoncePeriod is how often the server's DPoP nonces change when
// Config.DPoPNonces is set: a nonce is accepted for one to two periods.
const DefaultDPoPNoncePeriod = 5 * time.Minute

// dpopNoncePurpose derives the key of the server's DPoP nonces from the
// key-encryption key, so that every node sharing the store hands out and
// accepts the same nonces.
const dpopNoncePurpose = "latch dpop nonce"

// boundKey returns the cnf.jkt of verified JWT claims, "" when the token is
// not bound.
func boundKey(c *token.Claims) string {
	m, ok := c.Extra[ClaimConfirmation].(map[string]any)
	if !ok {
		return ""
	}
	jkt, _ := m["jkt"].(string)
	return jkt
}

// tokenType is the token_type of an access token bound to jkt: DPoP when
// bound (RFC 9449 §5), Bearer otherwise.
func tokenType(jkt string) string {
	if jkt != "" {
		return dpop.Scheme
	}
	return "Bearer"
}

// proofOf checks the DPoP proof of a request to one of the server's own
// endpoints (path: the token endpoint, the PAR endpoint, userinfo) as RFC
// 9449 §4.3 says, with htu the endpoint's URL under the issuer: the URL
// clients are told in the metadata, whatever proxy sits in front. It
// returns nil, and no error, when the request carries no DPoP header.
// accessToken is the token presented with the proof ("" at the token and
// PAR endpoints) and jkt the key it is bound to.
//
// A bad proof is 400 invalid_dpop_proof (§5), a missing or stale server
// nonce 400 use_dpop_nonce with a fresh one in DPoP-Nonce (§8), a replay
// cache that cannot answer 503: the proof is never accepted unchecked.
func (s *Server) proofOf(r *http.Request, path, accessToken, jkt string) (*dpop.Proof, error) {
	vals := r.Header.Values(dpop.HeaderName)
	switch len(vals) {
	case 0:
		return nil, nil
	case 1:
	default:
		// §4.3 step 1: exactly one DPoP header.
		return nil, dpopError(ErrInvalidDPoPProof, "the request has more than one DPoP header")
	}
	p, err := s.dpop.Check(r.Context(), vals[0], dpop.Request{Method: r.Method, URL: s.endpoint(path), AccessToken: accessToken, JKT: jkt})
	switch {
	case err == nil:
		s.dpopProofs.WithLabelValues("ok").Inc()
		return p, nil
	case errors.Is(err, dpop.ErrNonce):
		s.dpopProofs.WithLabelValues("nonce").Inc()
		e := dpopError(ErrUseDPoPNonce, "send the server's nonce from the DPoP-Nonce header in the proof")
		e.Header = http.Header{dpop.NonceHeader: {s.dpop.Nonce()}}
		return nil, e
	case errors.Is(err, dpop.ErrReplayUnavailable):
		s.dpopProofs.WithLabelValues("unavailable").Inc()
		return nil, latch.WithCause(latch.Errorf(latch.EUNAVAILABLE, "server: the DPoP replay cache cannot answer"), err)
	case errors.Is(err, dpop.ErrReplay):
		s.dpopProofs.WithLabelValues("replay").Inc()
	default:
		s.dpopProofs.WithLabelValues("invalid").Inc()
	}
	return nil, dpopError(ErrInvalidDPoPProof, dpop.Describe(err))
}

// bindingKey decides the key c's tokens of this request are bound to: the
// proof's, or none without a proof. A client registered with --dpop
// required must send one (RFC 9449 §5.2, dpop_bound_access_tokens).
func (s *Server) bindingKey(c *latch.Client, p *dpop.Proof) (string, error) {
	if p != nil {
		return p.JKT, nil
	}
	if c.RequiresDPoP() {
		return "", dpopError(ErrInvalidDPoPProof, "this client must send a DPoP proof with its token requests (it is registered with --dpop required)")
	}
	return "", nil
}

// requireKey checks that the request's proof is of the key jkt that a
// code (dpop_jkt, RFC 9449 §10) or a public client's refresh token (§5)
// is bound to; what names the binding.
func requireKey(p *dpop.Proof, jkt, what string) error {
	switch {
	case jkt == "":
		return nil
	case p == nil:
		return dpopError(ErrInvalidDPoPProof, what+" is bound to a DPoP key: send a DPoP proof of that key")
	case p.JKT != jkt:
		return dpopError(ErrInvalidDPoPProof, "the DPoP proof key is not the key "+what+" is bound to")
	}
	return nil
}

// dpopNonceHeader sets DPoP-Nonce on a successful response when the
// server requires nonces, so that a client always holds a fresh one (RFC
// 9449 §8.2).
func (s *Server) dpopNonceHeader(w http.ResponseWriter) {
	if s.cfg.DPoPNonces {
		w.Header().Set(dpop.NonceHeader, s.dpop.Nonce())
	}
}

func dpopError(code, description string) *oauth.Error {
	return oauth.BadRequest(code, description)
}

// DefaultPARLifetime is Config.PARLifetime's default: long enough for a
// user to sign in, short enough that a leaked request_uri is soon dead.
const DefaultPARLifetime = 5 * time.Minute

func (c *Config) validateDPoP() error {
	if _, err := dpop.New(dpop.Config{Algorithms: c.DPoPAlgorithms, Replay: dpop.NewMemoryReplayCache(1, nil)}); err != nil {
		return fmt.Errorf("server: DPoPAlgorithms: %w", err)
	}
	if c.DPoPNoncePeriod < time.Second {
		return fmt.Errorf("server: DPoPNoncePeriod %v is shorter than a second", c.DPoPNoncePeriod)
	}
	if c.PARLifetime < time.Second || c.PARLifetime > 10*time.Minute {
		return fmt.Errorf("server: PARLifetime %v is outside [1s, 10m]: a request_uri must be short-lived (RFC 9126 §7.3)", c.PARLifetime)
	}
	return nil
}

// newDPoP builds the server's proof checker: its algorithms, replay cache
// and, when configured, nonces derived from the keys.
func (s *Server) newDPoP() error {
	cfg := dpop.Config{Algorithms: s.cfg.DPoPAlgorithms, Replay: s.cfg.DPoPReplay, Now: s.now}
	if s.cfg.DPoPNonces {
		n, err := dpop.NewNonces(s.keys.DeriveKey(dpopNoncePurpose), s.cfg.DPoPNoncePeriod, s.now)
		if err != nil {
			return fmt.Errorf("server: DPoP nonces: %w", err)
		}
		cfg.Nonces = n
	}
	c, err := dpop.New(cfg)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.dpop = c
	s.dpopProofs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_dpop_proofs_total",
		Help: "DPoP proofs checked at the server's endpoints by result: ok, invalid, replay, nonce (use_dpop_nonce), unavailable (replay cache down).",
	}, []string{"result"})
	s.cfg.Registry.MustRegister(s.dpopProofs)
	return nil
}

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
)

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
		e.Header = http.Header{}
		e.Header.Set(dpop.NonceHeader, s.dpop.Nonce())
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

// tokenProof checks the DPoP proof of a token request of the
// authenticated client c (RFC 9449 §5: for every grant) and returns it with
// the key c's tokens are to be bound to: the proof's, or none without a
// proof. A client registered with --dpop required must send one (§5.2,
// dpop_bound_access_tokens). The proof is checked after the client
// authentication, so that only clients fill the replay cache.
func (s *Server) tokenProof(r *http.Request, c *latch.Client) (*dpop.Proof, string, error) {
	p, err := s.proofOf(r, "/oauth2/token", "", "")
	switch {
	case err != nil:
		return nil, "", err
	case p != nil:
		return p, p.JKT, nil
	case c.RequiresDPoP():
		return nil, "", dpopError(ErrInvalidDPoPProof, "this client must send a DPoP proof with its token requests (it is registered with --dpop required)")
	}
	return nil, "", nil
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

// userinfoToken authenticates a userinfo request (OIDC Core §5.3.1): a
// bearer access token (RFC 6750 §2.1), or a DPoP-bound one with the DPoP
// scheme and a proof of its key made for this request and this token (RFC
// 9449 §7.1). A bound token sent as Bearer is refused (§7.2): a copy of it
// without the key is worth nothing here either. ok is false when the
// answer, a challenge, is written already.
func (s *Server) userinfoToken(w http.ResponseWriter, r *http.Request) (in oauth.Introspection, ok bool, err error) {
	if len(r.Header.Values("Authorization")) == 0 {
		// RFC 6750 §3.1, RFC 9449 §7.1: a request without authentication
		// gets the bare challenges of both schemes.
		w.Header().Add("WWW-Authenticate", `Bearer realm="latch"`)
		w.Header().Add("WWW-Authenticate", `DPoP realm="latch", algs="`+s.dpop.Algorithms()+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		return in, false, nil
	}
	var raw string
	isDPoP := false
	if vals := r.Header.Values("Authorization"); len(vals) == 1 {
		var perr error
		raw, isDPoP, perr = oauth.ParseCredentials(vals[0], dpop.Scheme)
		if isDPoP && (perr != nil || len(raw) > maxBearerLength) {
			return in, false, s.dpopChallenge(w, http.StatusBadRequest, oauth.ErrInvalidRequest, "use one Authorization: DPoP <token> header", "")
		}
	}
	if !isDPoP {
		var ok bool
		if raw, ok = bearer(r); !ok {
			return in, false, bearerError(w, http.StatusBadRequest, oauth.ErrInvalidRequest, "use one Authorization: Bearer <token> header, or DPoP <token> with a DPoP proof")
		}
	}
	in, _, err = s.inspect(r.Context(), nil, raw)
	if err != nil {
		return in, false, err
	}
	switch {
	case !in.Active || in.TokenType != "Bearer" && in.TokenType != dpop.Scheme:
		if isDPoP {
			return in, false, s.dpopChallenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not active", "")
		}
		return in, false, bearerError(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not active")
	case !isDPoP && in.Cnf != nil:
		return in, false, bearerError(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is bound to a DPoP key: send it as Authorization: DPoP with a proof")
	case isDPoP && in.Cnf == nil:
		return in, false, s.dpopChallenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not bound to a DPoP key: send it as Bearer", "")
	case !isDPoP:
		return in, true, nil
	}
	if len(r.Header.Values(dpop.HeaderName)) != 1 {
		return in, false, s.dpopChallenge(w, http.StatusUnauthorized, ErrInvalidDPoPProof, "send exactly one DPoP header with the DPoP scheme", "")
	}
	_, err = s.proofOf(r, "/userinfo", raw, in.Cnf.JKT)
	var oerr *oauth.Error
	if errors.As(err, &oerr) {
		// The token endpoint's 400s are 401 challenges at a resource
		// (§7.1); a proof of another key than the token's is the
		// token's failure, invalid_token.
		code := oerr.Code
		if code == ErrInvalidDPoPProof && oerr.Description == dpop.Describe(dpop.ErrKeyBinding) {
			code = oauth.ErrInvalidToken
		}
		return in, false, s.dpopChallenge(w, http.StatusUnauthorized, code, oerr.Description, oerr.Header.Get(dpop.NonceHeader))
	} else if err != nil {
		return in, false, err
	}
	return in, true, nil
}

// dpopChallenge answers a DPoP-scheme request with an RFC 9449 §7.1
// challenge, the accepted algs, and a fresh nonce for use_dpop_nonce.
func (s *Server) dpopChallenge(w http.ResponseWriter, status int, code, description, nonce string) error {
	w.Header().Set("WWW-Authenticate", `DPoP realm="latch", error="`+code+`", error_description="`+description+`", algs="`+s.dpop.Algorithms()+`"`)
	if nonce != "" {
		w.Header().Set(dpop.NonceHeader, nonce)
	}
	oauth.WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
	return nil
}

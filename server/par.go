package server

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// parPath is the pushed authorization request endpoint (RFC 9126 §2).
const parPath = "/oauth2/par"

// maxRequestURI bounds the request_uri /oauth2/authorize reads: the prefix
// and a secret, with room to spare.
const maxRequestURI = 256

// ParResponse is the answer of the pushed authorization request endpoint
// (RFC 9126 §2.2).
type ParResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// par implements RFC 9126 §2: a client pushes its authorization request
// with its client authentication, as at the token endpoint (public
// clients by client_id alone, §2), and gets a request_uri that
// /oauth2/authorize accepts in its place, once and for PARLifetime.
//
// The request is checked here as /oauth2/authorize would check it, so a
// client learns of a bad request from this endpoint's JSON error rather
// than in a browser (§2.3). A DPoP proof sent here binds the future code to
// its key: its thumbprint becomes the request's dpop_jkt (RFC 9449 §10.1).
func (s *Server) par(w http.ResponseWriter, r *http.Request) error {
	form, oerr := oauth.ParseForm(w, r, s.cfg.MaxBodyBytes)
	if oerr != nil {
		return oerr
	}
	if form.Has("request_uri") {
		// §2.1: a pushed request cannot point at another.
		return oauth.BadRequest(oauth.ErrInvalidRequest, "request_uri cannot be pushed (RFC 9126 §2.1)")
	}
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, false)
	if err != nil {
		return err
	}
	// After the client authentication, as at the token endpoint.
	proof, err := s.proofOf(r, parPath, "", "")
	if err != nil {
		return err
	}
	params := url.Values{}
	for k, v := range form {
		params[k] = v
	}
	for _, k := range oauth.ClientAuthParams {
		params.Del(k)
	}
	params.Set("client_id", c.ID)
	if uri := params.Get("redirect_uri"); uri == "" || !redirectRegistered(c.RedirectURIs, uri) {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "redirect_uri is missing or not registered for this client")
	}
	if proof != nil {
		if jkt := params.Get("dpop_jkt"); jkt != "" && jkt != proof.JKT {
			return dpopError(ErrInvalidDPoPProof, "dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 §10.1)")
		}
		params.Set("dpop_jkt", proof.JKT)
	}
	if _, code, description := s.parseAuthorizeRequest(r.Context(), c, params); code != "" {
		return oauth.BadRequest(code, description)
	}
	raw, err := token.NewSecret(s.rand)
	if err != nil {
		return err
	}
	uri := oauth.RequestURIPrefix + raw
	now := s.now().Truncate(time.Second)
	if err := s.store.CreatePushedRequest(ctx, &latch.PushedRequest{
		Hash: token.Hash(uri), ClientID: c.ID, Params: params.Encode(),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.PARLifetime),
	}); err != nil {
		return err
	}
	s.dpopNonceHeader(w)
	oauth.WriteJSON(w, http.StatusCreated, ParResponse{RequestURI: uri, ExpiresIn: int64(s.cfg.PARLifetime / time.Second)})
	return nil
}

// pushedRequest resolves the request_uri of an authorization request
// (RFC 9126 §4) to the parameters pushed with it. The request must name
// the client_id it was pushed by; its other parameters are ignored, the
// pushed ones are the request. Every failure is shown on a page, since
// the redirect URI is not known yet. The request_uri is not used up here:
// a browser may come back to it after the sign-in and the consent page; a
// code issued from it uses it up (usePushed).
func (s *Server) pushedRequest(w http.ResponseWriter, r *http.Request, query url.Values) (*latch.PushedRequest, url.Values, bool) {
	uri, clientID := query.Get("request_uri"), query.Get("client_id")
	gone := func() (*latch.PushedRequest, url.Values, bool) {
		s.renderError(w, r, http.StatusBadRequest, "Request expired",
			"This sign-in request has expired or was used already. Go back to the application and start again.")
		return nil, nil, false
	}
	if clientID == "" {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "The request names no client (client_id is missing).")
		return nil, nil, false
	}
	if len(uri) > maxRequestURI || len(uri) <= len(oauth.RequestURIPrefix) || uri[:len(oauth.RequestURIPrefix)] != oauth.RequestURIPrefix {
		return gone()
	}
	p, err := s.store.PushedRequest(r.Context(), token.Hash(uri))
	if errors.Is(err, latch.ErrNotFound) {
		return gone()
	} else if err != nil {
		s.log.ErrorContext(r.Context(), "authorize: pushed request lookup failed", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Try again later", "The server cannot read the sign-in request right now.")
		return nil, nil, false
	}
	if !s.now().Before(p.ExpiresAt) || p.ClientID != clientID {
		// Another client's request_uri is as unknown as a made-up one.
		return gone()
	}
	params, err := url.ParseQuery(p.Params)
	if err != nil {
		return gone()
	}
	return p, params, true
}

// pushedRoundTrip is what the login page and the consent form carry back
// to /oauth2/authorize for a pushed request: its reference, not its
// parameters.
func pushedRoundTrip(p *latch.PushedRequest, uri string) url.Values {
	return url.Values{"client_id": {p.ClientID}, "request_uri": {uri}}
}

// dpopJKTOf returns the dpop_jkt of an authorization request (RFC 9449
// §10), "" when absent, and whether it is well-formed: the base64url of a
// SHA-256 thumbprint.
func dpopJKTOf(params url.Values) (string, bool) {
	jkt := params.Get("dpop_jkt")
	return jkt, jkt == "" || validChallenge(jkt)
}

package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// authorizationCodeGrant implements RFC 6749 §4.1.3 with PKCE (RFC 7636
// §4.6): the code is exchanged once, by the client it was issued to, with
// the redirect_uri of the authorization request and the verifier of its
// challenge. Public clients (auth method none) may use it; PKCE is what
// binds the code to them.
//
// The checks that do not consume the code come first, so that a stolen
// code presented with a wrong verifier or by another client leaves the
// legitimate client able to redeem it. Every failure is the same
// invalid_grant, whose description says which check failed: the client
// already holds the code, nothing secret is revealed.
func (s *Server) authorizationCodeGrant(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, false)
	if err != nil {
		return err
	}
	proof, jkt, err := s.tokenProof(r, c)
	if err != nil {
		return err
	}
	if !c.AllowsGrant(latch.GrantAuthorizationCode) {
		return oauth.BadRequest(oauth.ErrUnauthorizedClient, "client is not registered for the authorization_code grant")
	}
	raw, verifier := form.Get("code"), form.Get("code_verifier")
	if raw == "" || verifier == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "code and code_verifier are required (PKCE S256 is mandatory)")
	}
	if len(raw) > 256 {
		return invalidGrant("the authorization code is not valid")
	}
	hash := token.Hash(raw)
	code, err := s.store.Code(ctx, hash)
	if errors.Is(err, latch.ErrNotFound) {
		s.metrics.grants.WithLabelValues("authorization_code", "unknown").Inc()
		return invalidGrant("the authorization code is not valid")
	} else if err != nil {
		return err
	}
	switch {
	case code.ClientID != c.ID:
		s.metrics.grants.WithLabelValues("authorization_code", "refused").Inc()
		return invalidGrant("the authorization code was issued to another client")
	case form.Get("redirect_uri") != code.RedirectURI:
		s.metrics.grants.WithLabelValues("authorization_code", "refused").Inc()
		return invalidGrant("redirect_uri must be exactly the one of the authorization request")
	case !pkceMatches(verifier, code.CodeChallenge):
		s.metrics.grants.WithLabelValues("authorization_code", "refused").Inc()
		return invalidGrant("code_verifier does not match the code_challenge of the authorization request")
	}
	// RFC 9449 §10: a code asked for with dpop_jkt is redeemed with a
	// proof of that key only; like the checks above, before the code is
	// used up.
	if err := requireKey(proof, code.DPoPJKT, "the authorization code"); err != nil {
		s.metrics.grants.WithLabelValues("authorization_code", "refused").Inc()
		return err
	}
	if err := checkGrantTarget(c, form, code.Audience); err != nil {
		return err
	}
	u, err := s.activeUser(ctx, code.UserID)
	if err != nil {
		return err
	}
	if u.PasswordChangedAt.After(code.AuthTime) {
		// The password changed after the login that approved the code:
		// the hook deleted the code's siblings; this one lost a race
		// with it, and is as dead.
		return invalidGrant("the user's credentials changed after this code was issued; sign in again")
	}
	now := s.now().Truncate(time.Second)
	f := &latch.Family{
		ID: code.FamilyID, ClientID: c.ID, UserID: u.ID, SessionID: code.SessionID,
		Scope: code.Scope, Audience: code.Audience, AuthTime: code.AuthTime,
		// The absolute lifetime counts from the login, not the redemption.
		CreatedAt: now, ExpiresAt: code.AuthTime.Add(s.cfg.RefreshFamilyMaxAge),
	}
	g, err := s.mintGrant(w.Header(), c, u, f, code.Scope, now, code.Nonce, "", jkt)
	if err != nil {
		return err
	}
	err = s.store.RedeemCode(ctx, hash, now, f, g.issue)
	switch {
	case errors.Is(err, latch.ErrReused):
		// RFC 6749 §4.1.2: a code used twice SHOULD revoke the tokens
		// issued from it. The store revoked the family; tell the feed.
		s.revoked()
		s.metrics.grants.WithLabelValues("authorization_code", "reused").Inc()
		s.log.WarnContext(r.Context(), "authorization code reused: the tokens it issued are revoked", "client_id", c.ID, "family", code.FamilyID)
		return invalidGrant("the authorization code was already used; the tokens issued with it are revoked")
	case latch.ErrorCode(err) == latch.EUNAUTHORIZED || errors.Is(err, latch.ErrNotFound):
		s.metrics.grants.WithLabelValues("authorization_code", "expired").Inc()
		return invalidGrant("the authorization code has expired")
	case err != nil:
		return err
	}
	s.metrics.grants.WithLabelValues("authorization_code", "ok").Inc()
	s.metrics.issued.WithLabelValues(latch.GrantAuthorizationCode, string(g.format)).Inc()
	oauth.WriteJSON(w, http.StatusOK, g.resp)
	return nil
}

// refreshTokenGrant implements RFC 6749 §6 with rotation (RFC 9700
// §4.14.2): every use of a refresh token returns a new one, and the old
// one is spent. Reuse of a spent token after the grace window revokes the
// whole family (security invariant 7).
//
// The grace window (Config.RefreshGrace, default 10s) is for a client that
// sends the same refresh token twice at once: two browser tabs, a mobile
// app retrying after a lost response. Within it every request succeeds
// with its own access token and the same successor refresh token
// (authority.Tokens.MintGrant), so the family keeps exactly one live chain
// and none of the callers is logged out. A thief who replays a token within the window
// of its legitimate use gets that same successor, not a chain of their
// own: whichever of thief and client uses it second, after its window, is
// a reuse and revokes the family.
//
// A public client's refresh token bound to a DPoP key (RFC 9449 §5) is
// used with a proof of that key only, and its successor keeps the binding.
func (s *Server) refreshTokenGrant(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, false)
	if err != nil {
		return err
	}
	proof, jkt, err := s.tokenProof(r, c)
	if err != nil {
		return err
	}
	if !c.AllowsGrant(latch.GrantRefreshToken) {
		return oauth.BadRequest(oauth.ErrUnauthorizedClient, "client is not registered for the refresh_token grant")
	}
	raw := form.Get("refresh_token")
	if raw == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "refresh_token is required")
	}
	if kind, err := token.ParseOpaque(raw); err != nil || kind != latch.KindRefresh {
		s.metrics.grants.WithLabelValues("refresh_token", "unknown").Inc()
		return invalidGrant("the refresh token is not valid")
	}
	hash := token.Hash(raw)
	// One read for the token, its family and its user: the checks below
	// are on what does not change (the token's client, key and family;
	// the family's scope), and on the user as it is now; RotateRefresh
	// decides the token's and family's state again in its transaction.
	t, f, u, err := s.store.RefreshChain(ctx, hash)
	if errors.Is(err, latch.ErrNotFound) {
		s.metrics.grants.WithLabelValues("refresh_token", "unknown").Inc()
		return invalidGrant("the refresh token is not valid, expired or revoked")
	} else if err != nil {
		return err
	}
	if t.ClientID != c.ID {
		// RFC 6749 §6: the token is bound to its client. Not a reuse:
		// the family stays, its owner is not punished for a thief.
		s.metrics.grants.WithLabelValues("refresh_token", "refused").Inc()
		return invalidGrant("the refresh token was issued to another client")
	}
	if t.RegistrationID != c.RegistrationID {
		// Issued to a deleted client of the same ID.
		return invalidGrant("the refresh token is not valid, expired or revoked")
	}
	if err := requireKey(proof, t.JKT, "the refresh token"); err != nil {
		// Not a reuse: a thief without the key is refused, and the
		// family stays for its owner.
		s.metrics.grants.WithLabelValues("refresh_token", "refused").Inc()
		return err
	}
	scope := f.Scope
	if want := form.Get("scope"); want != "" {
		// §6: the scope may be narrowed, never widened, and the narrowing
		// holds for this access token only; the family keeps its scope.
		req, oerr := oauth.SplitScope(want)
		if oerr != nil {
			return oerr
		}
		for _, sc := range req {
			if !slices.Contains(f.Scope, sc) {
				return oauth.BadRequest(oauth.ErrInvalidScope, "requested scope exceeds the scope of the grant")
			}
		}
		scope = req
	}
	if err := checkGrantTarget(c, form, f.Audience); err != nil {
		return err
	}
	if u.Disabled {
		return userDisabled()
	}
	now := s.now().Truncate(time.Second)
	g, err := s.mintGrant(w.Header(), c, u, f, scope, now, "", raw, jkt)
	if err != nil {
		return err
	}
	_, _, err = s.store.RotateRefresh(ctx, hash, now, s.cfg.RefreshGrace, g.issue)
	switch {
	case errors.Is(err, latch.ErrReused):
		s.revoked()
		s.metrics.grants.WithLabelValues("refresh_token", "reused").Inc()
		s.log.WarnContext(r.Context(), "refresh token reused after rotation: family revoked", "client_id", c.ID, "family", f.ID, "sub", f.UserID)
		return invalidGrant("the refresh token was already used; every token of this grant is revoked, sign in again")
	case errors.Is(err, latch.ErrNotFound) || latch.ErrorCode(err) == latch.EUNAUTHORIZED:
		s.metrics.grants.WithLabelValues("refresh_token", "expired").Inc()
		return invalidGrant("the refresh token is expired or revoked, sign in again")
	case err != nil:
		return err
	}
	s.metrics.grants.WithLabelValues("refresh_token", "ok").Inc()
	s.metrics.issued.WithLabelValues(latch.GrantRefreshToken, string(g.format)).Inc()
	oauth.WriteJSON(w, http.StatusOK, g.resp)
	return nil
}

// passwordGrant implements RFC 6749 §4.3 for first-party clients that opt
// in by registering the password grant. It is legacy (RFC 9700 §2.4 says it
// MUST NOT be used): the client sees the user's password. It exists for
// migrations from systems that used it, behind the same throttling and
// dummy verification as the login form.
func (s *Server) passwordGrant(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, true)
	if err != nil {
		return err
	}
	_, jkt, err := s.tokenProof(r, c)
	if err != nil {
		return err
	}
	if !c.AllowsGrant(latch.GrantPassword) || !c.FirstParty {
		return oauth.BadRequest(oauth.ErrUnauthorizedClient, "client is not registered for the password grant (it is off by default: a first-party client opts in with --first-party --grant password)")
	}
	username, pw := form.Get("username"), form.Get("password")
	if username == "" || pw == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "username and password are required")
	}
	scope, aud, err := s.scopeAndAudience(ctx, c, form)
	if err != nil {
		return err
	}
	u, result, wait, err := s.checkCredentials(r, username, pw)
	if err != nil {
		return err
	}
	s.metrics.login(result)
	switch result {
	case "throttled":
		e := oauth.BadRequest(oauth.ErrInvalidGrant, "too many failed attempts for this user or address; retry later")
		e.Status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return e
	case "busy":
		w.Header().Set("Retry-After", "1")
		return oauth.Unavailable()
	case "bad_credentials":
		// One answer for an unknown user, a wrong password and a
		// disabled user, as on the login page.
		return invalidGrant("wrong username or password")
	}
	scope = grantableScope(u, scope)
	now := s.now().Truncate(time.Second)
	familyID, err := token.NewID(s.rand)
	if err != nil {
		return err
	}
	f := &latch.Family{
		ID: familyID, ClientID: c.ID, UserID: u.ID, Scope: scope, Audience: aud,
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshFamilyMaxAge),
	}
	g, err := s.mintGrant(w.Header(), c, u, f, scope, now, "", "", jkt)
	if err != nil {
		return err
	}
	if err := s.store.CreateFamily(ctx, f, g.issue); err != nil {
		return err
	}
	s.metrics.issued.WithLabelValues(latch.GrantPassword, string(g.format)).Inc()
	oauth.WriteJSON(w, http.StatusOK, g.resp)
	return nil
}

// grant is what mintGrant built: the response and the records to store
// with it, in one transaction.
type grant struct {
	resp   *oauth.TokenResponse
	issue  latch.Issue
	format latch.TokenFormat
}

// mintGrant builds the tokens of a user grant in family f: an access token
// in the client's format, a refresh token when the client may refresh,
// and an ID token when scope holds openid. The refresh token is new and
// random, or, when parent is the refresh token being rotated, parent's
// successor (authority.Tokens.MintGrant). jkt, when set, binds the tokens to that DPoP
// key. Nothing is stored: the caller writes g.issue
// with the code redemption or rotation it results from.
func (s *Server) mintGrant(h http.Header, c *latch.Client, u *latch.User, f *latch.Family, scope []string, now time.Time, nonce, parent, jkt string) (*grant, error) {
	scope = grantableScope(u, scope) // the user may have lost the role since
	at, err := s.tok.MintGrant(c, u.ID, scope, f, now, parent, userClaims(u), jkt)
	if err != nil {
		return nil, err
	}
	if at.Cookie != "" {
		h.Add("Set-Cookie", at.Cookie)
	}
	resp, issue, format := at.Response, at.Issue, at.Format
	if slices.Contains(scope, latch.ScopeOpenID) {
		idt, err := s.signIDToken(c, u, f, scope, now, nonce, resp.AccessToken)
		if err != nil {
			return nil, err
		}
		resp.IDToken = idt
	}
	return &grant{resp: resp, issue: issue, format: format}, nil
}

// activeUser returns the user id names if it may still obtain tokens:
// it exists and is not disabled. Anything else is invalid_grant.
func (s *Server) activeUser(ctx context.Context, id string) (*latch.User, error) {
	u, err := s.store.User(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, invalidGrant("the user of this grant no longer exists")
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, userDisabled()
	}
	return u, nil
}

// userDisabled refuses a grant whose user is disabled.
func userDisabled() error { return invalidGrant("the user of this grant is disabled") }

// pkceMatches checks an RFC 7636 §4.6 S256 verifier against the stored
// challenge, in constant time. The verifier's syntax (§4.1: 43 to 128
// unreserved characters) is checked too, so that a client sending a
// malformed verifier learns of its bug instead of succeeding by accident.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		if !isUnreserved(verifier[i]) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// isUnreserved reports whether b is an RFC 3986 §2.3 unreserved character.
func isUnreserved(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~'
}

func invalidGrant(description string) *oauth.Error {
	return oauth.BadRequest(oauth.ErrInvalidGrant, description)
}

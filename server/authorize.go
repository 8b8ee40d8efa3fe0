package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// Form fields of the consent page's POST back to /oauth2/authorize; they
// are not parameters of the authorization request.
const (
	fieldConsent = "consent"
	fieldCSRF    = "csrf_token"
)

// authorize implements the authorization endpoint (RFC 6749 §4.1.1, PKCE
// RFC 7636 with S256 only, OIDC Core §3.1.2, RFC 9207's iss in the
// response).
//
// Until the client and its redirect URI are known to be registered, errors
// are shown to the user on a page and never redirected (§4.1.2.1: a
// redirect to an unchecked URI is an open redirector). After that, they go
// back to the client as error parameters. A browser without a login
// session is sent to /login and comes back here; a third-party client's
// request is shown on a consent page first, whose form posts back here.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "The authorization endpoint answers GET and POST.")
		return nil
	}
	params, consent, csrf, ok := s.authorizeParams(w, r)
	if !ok {
		return nil
	}
	// back is what the login page and the consent form bring back here:
	// the request, or for a pushed one (RFC 9126 §4) its reference.
	back := params
	var pushed *latch.PushedRequest
	if params.Has("request_uri") {
		uri := params.Get("request_uri")
		if pushed, params, ok = s.pushedRequest(w, r, params); !ok {
			return nil
		}
		back = pushedRoundTrip(pushed, uri)
	}
	c, redirectURI, ok := s.authorizeClient(w, r, params)
	if !ok {
		return nil
	}
	fail := func(code, description string) error {
		s.redirectError(w, r, redirectURI, params.Get("state"), code, description)
		return nil
	}
	if pushed == nil && c.RequirePAR {
		return fail(oauth.ErrInvalidRequest, "this client must push its authorization requests to the pushed_authorization_request_endpoint first (RFC 9126)")
	}
	req, code, description := s.parseAuthorizeRequest(r.Context(), c, params)
	if code != "" {
		return fail(code, description)
	}
	// The request travels to the login page and back in return_to: it
	// must fit there, or the login would drop it. A pushed request
	// travels as its reference, whatever its size.
	if pushed == nil && len("/oauth2/authorize?"+params.Encode()) > maxReturnTo {
		return fail(oauth.ErrInvalidRequest, "the authorization request is too long; push it to the pushed_authorization_request_endpoint instead (RFC 9126)")
	}

	sess, user, err := s.currentSession(w, r)
	if err != nil {
		return err
	}
	now := s.now()
	tooOld := sess != nil && loginTooOld(now.Sub(sess.AuthTime), req.maxAge)
	if pushed != nil && sess != nil && !sess.AuthTime.Before(pushed.CreatedAt) {
		// The pushed request keeps its prompt=login and max_age=0 on the
		// way back from the login page, which strips them from a plain
		// one: a login after the push is the fresh login they ask for.
		req.forceLogin = false
		if req.maxAge == 0 {
			tooOld = false
		}
	}
	if sess == nil || req.forceLogin || tooOld {
		if req.promptNone {
			return fail("login_required", "the user is not signed in, or not recently enough")
		}
		s.redirectToLogin(w, r, back, req.forceLogin || tooOld)
		return nil
	}
	req.scope = grantableScope(user, req.scope)
	if req.hintSubject != "" && req.hintSubject != user.ID {
		// OIDC Core §3.1.2.1: the client asked for another user than the
		// one signed in here. Silently, it must not get this one's code.
		if req.promptNone {
			return fail("login_required", "the signed-in user is not the one of id_token_hint")
		}
		s.redirectToLogin(w, r, back, true)
		return nil
	}
	remembered := false
	if !c.FirstParty && consent == "" && !req.promptConsent {
		if remembered, err = s.consentCovers(r.Context(), user.ID, c.ID, req.scope); err != nil {
			return err
		}
	}
	if !c.FirstParty && !remembered {
		switch {
		case consent == "" && req.promptNone:
			return fail("consent_required", "the user has not approved this client")
		case consent == "":
			s.renderConsent(w, r, sess, ConsentView{ClientID: c.ID, ClientName: c.Name, Username: user.Username,
				Scopes: req.scope, Params: back})
			return nil
		case r.Method != http.MethodPost || !s.checkCSRF(r, sess) || csrf == "":
			s.renderError(w, r, http.StatusForbidden, "Request refused",
				"The approval did not come from this server's consent page. Go back to the application and try again.")
			return nil
		case consent != "allow":
			return fail("access_denied", "the user denied the request")
		}
		if err := s.rememberConsent(r.Context(), user.ID, c.ID, req.scope); err != nil {
			return err
		}
	}

	raw, err := token.NewSecret(s.rand)
	if err != nil {
		return err
	}
	familyID, err := token.NewID(s.rand)
	if err != nil {
		return err
	}
	now = now.Truncate(time.Second)
	if pushed != nil {
		// RFC 9126 §4: one code per request_uri.
		err := s.store.UsePushedRequest(r.Context(), pushed.Hash, now)
		if errors.Is(err, latch.ErrNotFound) || latch.ErrorCode(err) == latch.EUNAUTHORIZED {
			return fail(oauth.ErrInvalidRequest, "the request_uri was used already or has expired")
		} else if err != nil {
			return err
		}
	}
	ac := &latch.AuthCode{
		Hash: token.Hash(raw), ClientID: c.ID, UserID: user.ID, SessionID: sess.SID(), RedirectURI: redirectURI,
		Scope: req.scope, Audience: req.audience, Nonce: params.Get("nonce"), CodeChallenge: params.Get("code_challenge"),
		DPoPJKT: req.dpopJKT, AuthTime: sess.AuthTime, FamilyID: familyID, IssuedAt: now, ExpiresAt: now.Add(s.cfg.AuthCodeTTL),
	}
	if err := s.store.CreateCode(r.Context(), ac); err != nil {
		return err
	}
	// iss: RFC 9207 §2, the mix-up defence for clients of several servers.
	s.redirectBack(w, r, redirectURI, url.Values{"code": {raw}, "state": nonEmpty(params.Get("state")), "iss": {s.cfg.Issuer}})
	return nil
}

// authorizeParams returns the parameters of the authorization request
// (the query of a GET, the form of a POST, OIDC Core §3.1.2.1), and the
// consent page's own fields separately. A parameter given twice is
// refused (RFC 6749 §3.1) on a page: the request cannot be trusted enough
// to redirect anywhere.
func (s *Server) authorizeParams(w http.ResponseWriter, r *http.Request) (params url.Values, consent, csrf string, ok bool) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, r, http.StatusBadRequest, "Bad request", "The request could not be read.")
			return nil, "", "", false
		}
		// A copy: the consent fields are removed from params below, and
		// checkCSRF reads r.PostForm.
		params = url.Values{}
		for k, v := range r.PostForm {
			params[k] = v
		}
	} else {
		var err error
		if params, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			s.renderError(w, r, http.StatusBadRequest, "Bad request", "The request's query string is malformed.")
			return nil, "", "", false
		}
	}
	for k, v := range params {
		if len(v) > 1 {
			s.renderError(w, r, http.StatusBadRequest, "Bad request", "The parameter "+oauth.Quote(k)+" is given more than once.")
			return nil, "", "", false
		}
	}
	consent, csrf = params.Get(fieldConsent), params.Get(fieldCSRF)
	params.Del(fieldConsent)
	params.Del(fieldCSRF)
	return params, consent, csrf, true
}

// authorizeClient finds the client and checks the redirect URI against its
// registration, exactly (RFC 9700 §4.1.3: no pattern, no prefix). A
// request that names no redirect URI is refused: latch does not guess.
func (s *Server) authorizeClient(w http.ResponseWriter, r *http.Request, params url.Values) (*latch.Client, string, bool) {
	id := params.Get("client_id")
	if id == "" {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "The request names no client (client_id is missing).")
		return nil, "", false
	}
	c, err := s.clients.Client(r.Context(), id)
	if errors.Is(err, latch.ErrNotFound) {
		s.renderError(w, r, http.StatusBadRequest, "Unknown application", "The application "+oauth.Quote(id)+" is not registered here.")
		return nil, "", false
	} else if err != nil {
		s.log.ErrorContext(r.Context(), "authorize: client lookup failed", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Try again later", "The server cannot check the application right now.")
		return nil, "", false
	}
	redirectURI := params.Get("redirect_uri")
	if redirectURI == "" || !redirectRegistered(c.RedirectURIs, redirectURI) {
		s.renderError(w, r, http.StatusBadRequest, "Cannot return to "+appName(c),
			unregisteredRedirect(c))
		return nil, "", false
	}
	return c, redirectURI, true
}

// authorizeRequest is a checked authorization request.
type authorizeRequest struct {
	scope, audience []string
	promptNone      bool
	forceLogin      bool
	promptConsent   bool   // ask even when the user consented before
	maxAge          int64  // seconds; -1 when absent
	hintSubject     string // sub of a valid id_token_hint; "" when absent
	dpopJKT         string // dpop_jkt (RFC 9449 §10); "" when absent
}

// parseAuthorizeRequest checks what is left once the redirect URI is
// trusted. It returns an RFC 6749 §4.1.2.1 / OIDC §3.1.2.6 error code and
// description, or "" when the request is acceptable.
func (s *Server) parseAuthorizeRequest(ctx context.Context, c *latch.Client, params url.Values) (req authorizeRequest, code, description string) {
	req.maxAge = -1
	switch {
	case params.Has("request"):
		return req, "request_not_supported", "request objects are not supported"
	case params.Has("request_uri"):
		return req, oauth.ErrInvalidRequest, "a pushed request cannot name a request_uri"
	case params.Get("response_type") != "code":
		return req, "unsupported_response_type", "only response_type=code is supported"
	case !c.AllowsGrant(latch.GrantAuthorizationCode):
		return req, oauth.ErrUnauthorizedClient, "the client is not registered for the authorization code grant"
	case params.Has("response_mode") && params.Get("response_mode") != "query":
		return req, oauth.ErrInvalidRequest, "only response_mode=query is supported"
	case params.Get("code_challenge_method") != "S256":
		return req, oauth.ErrInvalidRequest, "PKCE is required: send code_challenge with code_challenge_method=S256"
	case !validChallenge(params.Get("code_challenge")):
		return req, oauth.ErrInvalidRequest, "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
	case len(params.Get("state")) > 2048 || len(params.Get("nonce")) > 512:
		return req, oauth.ErrInvalidRequest, "state or nonce is too long"
	}
	scope, oerr := oauth.SplitScope(params.Get("scope"))
	if oerr != nil {
		return req, oerr.Code, oerr.Description
	}
	scope, err := s.tok.GrantScope(ctx, c, scope)
	if err != nil {
		var oe *oauth.Error
		if errors.As(err, &oe) {
			return req, oe.Code, oe.Description
		}
		s.log.ErrorContext(ctx, "authorize: reading the clients' scopes failed", "err", err)
		return req, oauth.ErrTemporarilyUnavailable, "the server cannot check the scope right now"
	}
	req.scope = scope
	aud, err := audience(c, params)
	if err != nil {
		var oe *oauth.Error
		if errors.As(err, &oe) {
			return req, oe.Code, oe.Description
		}
		return req, oauth.ErrServerError, "audience check failed"
	}
	req.audience = aud
	for p := range strings.FieldsSeq(params.Get("prompt")) {
		switch p {
		case "none":
			req.promptNone = true
		case "login":
			req.forceLogin = true
		case "consent":
			req.promptConsent = true
		case "select_account":
			// There is one account per session: the login page (prompt=login)
			// is where another one signs in.
		default:
			return req, oauth.ErrInvalidRequest, "unknown prompt value " + oauth.Quote(p)
		}
	}
	if req.promptNone && (req.forceLogin || len(strings.Fields(params.Get("prompt"))) > 1) {
		return req, oauth.ErrInvalidRequest, "prompt=none cannot be combined with other values"
	}
	if v := params.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return req, oauth.ErrInvalidRequest, "max_age must be a non-negative number of seconds"
		}
		req.maxAge = n
	}
	if h := params.Get("id_token_hint"); h != "" {
		claims, err := s.idTokenHint(h)
		if err != nil {
			return req, oauth.ErrInvalidRequest, "id_token_hint is not an ID token issued here"
		}
		req.hintSubject = claims.Subject
	}
	jkt, ok := dpopJKTOf(params)
	if !ok {
		return req, oauth.ErrInvalidRequest, "dpop_jkt must be the base64url SHA-256 thumbprint of a DPoP key (43 characters, RFC 9449 §10)"
	}
	req.dpopJKT = jkt
	return req, "", ""
}

// validChallenge accepts an S256 code challenge: 43 base64url characters,
// the encoding of 32 bytes.
func validChallenge(ch string) bool {
	if len(ch) != 43 {
		return false
	}
	for i := 0; i < len(ch); i++ {
		if !isUnreserved(ch[i]) || ch[i] == '.' || ch[i] == '~' {
			return false
		}
	}
	return true
}

// loginTooOld reports whether a login elapsed ago is older than the
// request's max_age (seconds; -1 when absent), which then asks for the
// password again like prompt=login (OIDC Core §3.1.2.1). max_age=0 always
// does, even within the second of the login (OIDC Core: it is equivalent
// to prompt=login); the comparison is exact, not in whole seconds, and a
// max_age too large for a Duration is never exceeded.
func loginTooOld(elapsed time.Duration, maxAge int64) bool {
	switch {
	case maxAge < 0:
		return false
	case maxAge == 0:
		return true
	case maxAge > int64(math.MaxInt64/time.Second):
		return false
	}
	return elapsed > time.Duration(maxAge)*time.Second
}

// redirectToLogin sends the browser to the login page, which brings it
// back to this request. A forced login (prompt=login, max_age exceeded)
// is not asked for again on the way back, or the user would log in
// forever: the login is fresh by then, and auth_time in the ID token lets
// the client check it.
func (s *Server) redirectToLogin(w http.ResponseWriter, r *http.Request, params url.Values, force bool) {
	back := url.Values{}
	for k, v := range params {
		back[k] = v
	}
	if force {
		back.Del("max_age")
		var rest []string
		for p := range strings.FieldsSeq(back.Get("prompt")) {
			if p != "login" {
				rest = append(rest, p)
			}
		}
		if len(rest) == 0 {
			back.Del("prompt")
		} else {
			back.Set("prompt", strings.Join(rest, " "))
		}
	}
	q := url.Values{"return_to": {"/oauth2/authorize?" + back.Encode()}}
	if force {
		q.Set("prompt", "login")
	}
	http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
}

// redirectBack sends the browser to the client's redirect URI with q
// added to its query. After a POST (the consent form) it is 303, so the
// browser does not post again.
func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, redirectURI string, q url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered URIs were parsed at registration; this is a bug.
		s.renderError(w, r, http.StatusInternalServerError, "Server error", "The application's redirect URI is unusable.")
		return
	}
	query := u.Query()
	for k, v := range q {
		query[k] = v
	}
	u.RawQuery = query.Encode()
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(status)
}

// redirectError answers an authorization error to the client (RFC 6749
// §4.1.2.1).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, description string) {
	s.redirectBack(w, r, redirectURI, url.Values{"error": {code}, "error_description": {description},
		"state": nonEmpty(state), "iss": {s.cfg.Issuer}})
}

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// endSessionEndpoint implements OIDC RP-Initiated Logout 1.0: an
// application sends the browser here to sign the user out.
//
// The session ends at once only when the request proves it comes from an
// application the user signed in to: an id_token_hint issued here whose sid
// is the browser's current session. Otherwise a cross-site link could sign
// anyone out, so the browser lands on the account page, where signing out
// is one button. post_logout_redirect_uri must be one of the client's
// registered redirect URIs; state is passed back.
func (s *Server) endSessionEndpoint(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "The logout endpoint answers GET and POST.")
		return nil
	}
	params, _, _, ok := s.authorizeParams(w, r)
	if !ok {
		return nil
	}
	ctx := r.Context()
	var hint *token.Claims
	if h := params.Get("id_token_hint"); h != "" {
		claims, err := s.idTokenHint(h)
		if err != nil {
			s.renderError(w, r, http.StatusBadRequest, "Bad request", "The id_token_hint is not an ID token issued here.")
			return nil
		}
		hint = claims
	}
	clientID := params.Get("client_id")
	if hint != nil && clientID != "" && !slices.Contains(hint.Audience, clientID) {
		// RP-Initiated Logout §2: the client must be the hint's.
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "client_id is not the client the id_token_hint was issued to.")
		return nil
	}
	if clientID == "" && hint != nil && len(hint.Audience) == 1 {
		clientID = hint.Audience[0]
	}
	target := params.Get("post_logout_redirect_uri")
	if target != "" {
		c, err := s.clients.Client(ctx, clientID)
		if err != nil && !errors.Is(err, latch.ErrNotFound) {
			s.log.ErrorContext(r.Context(), "end session: client lookup failed", "err", err)
			s.renderError(w, r, http.StatusServiceUnavailable, "Try again later", "The server cannot check the application right now.")
			return nil
		}
		if err != nil || !slices.Contains(c.RedirectURIs, target) {
			s.renderError(w, r, http.StatusBadRequest, "Bad request",
				"post_logout_redirect_uri is not a registered redirect URI of the application (send client_id or id_token_hint).")
			return nil
		}
	}
	sess, _, err := s.currentSession(w, r)
	if err != nil {
		return err
	}
	if sess != nil {
		if hint == nil || hint.Extra["sid"] != sess.SID() {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return nil
		}
		if err := s.endSession(ctx, sess); err != nil {
			return err
		}
		setCookie(w, sessionCookie, "", http.SameSiteLaxMode, -1)
	}
	if target == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	s.redirectBack(w, r, target, url.Values{"state": nonEmpty(params.Get("state"))})
	return nil
}

// idTokenHint verifies an ID token issued here, given back as a hint
// (OIDC Core §3.1.2.1, RP-Initiated Logout §2). It is accepted past its
// exp, for as long as a grant lives: it names a user or a session, it
// authorizes nothing.
func (s *Server) idTokenHint(raw string) (*token.Claims, error) {
	if len(raw) > 16<<10 {
		return nil, errors.New("server: id_token_hint too long")
	}
	return token.Verify(context.Background(), raw, authority.KeySet{Keys: s.keys}, token.VerifyOptions{
		Issuer: s.cfg.Issuer, SkipAudienceCheck: true, Type: TypeIDToken, Algorithms: latch.Algorithms,
		Leeway: s.cfg.RefreshFamilyMaxAge, Now: s.now,
	})
}

// redirectRegistered reports whether uri is one of the registered redirect
// URIs: exactly, character for character (RFC 9700 §2.1), except that for
// a registered http URI on a loopback IP literal (127.0.0.1 or [::1]) any
// port is allowed, as RFC 8252 §7.3 requires: a native app listens on
// whatever port the operating system gives it.
func redirectRegistered(registered []string, uri string) bool {
	if slices.Contains(registered, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") {
		return false
	}
	for _, reg := range registered {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || r.Hostname() != u.Hostname() {
			continue
		}
		if r.EscapedPath() == u.EscapedPath() && r.RawQuery == u.RawQuery && r.User == nil && u.User == nil &&
			u.Port() != "" && !u.ForceQuery && u.Fragment == "" {
			return true
		}
	}
	return false
}

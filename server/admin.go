package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/registry"
)

// grantableScope is scope without ScopeAdmin when u does not hold
// RoleAdmin: what a grant for u may carry, however the client that asks
// is registered. RFC 6749 §3.3 lets the server issue less than asked; the
// token response's scope says what was granted.
func grantableScope(u *latch.User, scope []string) []string {
	if !slices.Contains(scope, latch.ScopeAdmin) || slices.Contains(u.Roles, latch.RoleAdmin) {
		return scope
	}
	out := make([]string, 0, len(scope)-1)
	for _, s := range scope {
		if s != latch.ScopeAdmin {
			out = append(out, s)
		}
	}
	return out
}

// problem is an RFC 7807 problem detail, the error body of the admin API.
type problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// RequestID names the request in the server's log, on server errors.
	RequestID string `json:"request_id,omitempty"`
	header    http.Header
}

func (p *problem) Error() string { return "admin: " + p.Title + ": " + p.Detail }

func (p *problem) write(w http.ResponseWriter) {
	for k, v := range p.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// renderProblem answers the admin API's errors as RFC 7807 problem details
// (an OAuth error from a shared code path keeps its RFC 6749 form).
func renderProblem(w http.ResponseWriter, r *http.Request, status int, err error, id string) {
	var pe *problem
	var oe *oauth.Error
	switch {
	case errors.As(err, &pe):
		pe.write(w)
	case errors.As(err, &oe):
		oe.Write(w)
	case status >= 500:
		(&problem{Status: status, Title: http.StatusText(status), Detail: latch.ErrorMessage(err), RequestID: id}).write(w)
	default:
		(&problem{Status: status, Title: http.StatusText(status), Detail: latch.ErrorMessage(err)}).write(w)
	}
}

func (s *Server) adminRoutes(m *http.ServeMux) {
	clients := &registry.Clients{Store: s.store, MaxAccessTokenTTL: s.cfg.MaxAccessTokenTTL, Now: s.now, Rand: s.rand}
	admin := func(name string, h handlerFunc) http.Handler {
		return s.adapt("admin_"+name, renderProblem, s.requireAdmin(h))
	}

	m.Handle("GET /admin/v1/clients", admin("clients", func(w http.ResponseWriter, r *http.Request) error {
		cs, err := s.store.Clients(r.Context())
		if err != nil {
			return err
		}
		views := make([]*registry.ClientView, 0, len(cs))
		for _, c := range cs {
			views = append(views, registry.ViewOf(c))
		}
		return writeJSON(w, http.StatusOK, views)
	}))
	m.Handle("POST /admin/v1/clients", admin("clients", func(w http.ResponseWriter, r *http.Request) error {
		var spec registry.ClientSpec
		if err := readJSON(w, r, &spec); err != nil {
			return err
		}
		v, err := clients.Create(r.Context(), spec)
		s.webOrigins.forget()
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, v)
	}))
	m.Handle("GET /admin/v1/clients/{id}", admin("clients", func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.store.Client(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, registry.ViewOf(c))
	}))
	m.Handle("PATCH /admin/v1/clients/{id}", admin("clients", func(w http.ResponseWriter, r *http.Request) error {
		var p registry.ClientPatch
		if err := readJSON(w, r, &p); err != nil {
			return err
		}
		v, err := clients.Update(r.Context(), r.PathValue("id"), p)
		s.clients.Forget(r.PathValue("id"))
		s.webOrigins.forget()
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}))
	m.Handle("DELETE /admin/v1/clients/{id}", admin("clients", func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		err := s.store.DeleteClient(r.Context(), id)
		s.clients.Forget(id)
		s.webOrigins.forget()
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	m.Handle("POST /admin/v1/clients/{id}/rotate-secret", admin("clients", func(w http.ResponseWriter, r *http.Request) error {
		v, err := clients.RotateSecret(r.Context(), r.PathValue("id"))
		s.clients.Forget(r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}))
	s.adminUserRoutes(m, admin)
	m.Handle("GET /admin/v1/keys", admin("keys", func(w http.ResponseWriter, r *http.Request) error {
		ks, err := s.keys.List(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, ks)
	}))
	m.Handle("POST /admin/v1/keys/rotate", admin("keys", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Algorithm latch.Algorithm `json:"alg"`
		}
		if r.ContentLength != 0 {
			if err := readJSON(w, r, &req); err != nil {
				return err
			}
		}
		k, err := s.keys.Rotate(r.Context(), req.Algorithm)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, map[string]any{"kid": k.ID, "alg": k.Algorithm, "active_at": k.ActiveAt.UTC()})
	}))
	m.Handle("POST /admin/v1/keys/{kid}/retire", admin("keys", func(w http.ResponseWriter, r *http.Request) error {
		removeNow := r.URL.Query().Get("now") == "true"
		if err := s.keys.Retire(r.Context(), r.PathValue("kid"), removeNow); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	m.Handle("/admin/", s.adapt("admin_unknown", renderProblem, func(w http.ResponseWriter, r *http.Request) error {
		return &problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "no such admin endpoint; see docs/admin.md"}
	}))
}

// adminUserRoutes are the users endpoints. {id} is a user's ID or username
// (Users.Get). Passwords travel only in request bodies, which are never
// logged, and no answer holds a password hash.
func (s *Server) adminUserRoutes(m *http.ServeMux, admin func(string, handlerFunc) http.Handler) {
	users := s.users()
	answer := func(w http.ResponseWriter, status int) func(*registry.UserView, error) error {
		return func(v *registry.UserView, err error) error {
			if err != nil {
				return err
			}
			return writeJSON(w, status, v)
		}
	}
	m.Handle("GET /admin/v1/users", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		vs, err := users.List(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, vs)
	}))
	m.Handle("POST /admin/v1/users", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		var spec registry.UserSpec
		if err := readJSON(w, r, &spec); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(users.Create(r.Context(), spec))
	}))
	m.Handle("GET /admin/v1/users/{id}", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(users.Get(r.Context(), r.PathValue("id")))
	}))
	m.Handle("DELETE /admin/v1/users/{id}", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(users.Delete(r.Context(), r.PathValue("id")))
	}))
	m.Handle("POST /admin/v1/users/{id}/password", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Password string `json:"password"`
		}
		if err := readJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(users.SetPassword(r.Context(), r.PathValue("id"), req.Password))
	}))
	m.Handle("POST /admin/v1/users/{id}/disable", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(users.SetDisabled(r.Context(), r.PathValue("id"), true))
	}))
	m.Handle("POST /admin/v1/users/{id}/enable", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(users.SetDisabled(r.Context(), r.PathValue("id"), false))
	}))
	m.Handle("GET /admin/v1/users/{id}/sessions", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		vs, err := users.Sessions(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, vs)
	}))
	m.Handle("DELETE /admin/v1/users/{id}/sessions/{sid}", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		if err := users.EndSession(r.Context(), r.PathValue("id"), r.PathValue("sid")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	m.Handle("POST /admin/v1/users/{id}/logout", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(users.LogoutEverywhere(r.Context(), r.PathValue("id")))
	}))
	m.Handle("PUT /admin/v1/users/{id}/roles", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Roles  []string `json:"roles"`
			Groups []string `json:"groups"`
		}
		if err := readJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(users.SetRoles(r.Context(), r.PathValue("id"), req.Roles, req.Groups))
	}))
	m.Handle("PUT /admin/v1/users/{id}/profile", admin("users", func(w http.ResponseWriter, r *http.Request) error {
		var spec registry.ProfileSpec
		if err := readJSON(w, r, &spec); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(users.SetProfile(r.Context(), r.PathValue("id"), spec))
	}))
}

// requireAdmin admits requests bearing an active access token issued here
// with the latch:admin scope (RFC 6750 §2.1 header only: tokens in URLs end
// up in logs). Failures carry the RFC 6750 §3 challenge.
func (s *Server) requireAdmin(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		challenge := func(status int, code, detail string) error {
			hdr := `Bearer realm="latch-admin"`
			if code != "" {
				hdr += `, error="` + code + `", error_description="` + detail + `"`
			}
			return &problem{Status: status, Title: http.StatusText(status), Detail: detail,
				header: http.Header{"Www-Authenticate": {hdr}}}
		}
		if r.Header.Get("Authorization") == "" {
			return challenge(http.StatusUnauthorized, "", "an access token with scope latch:admin is required")
		}
		raw, ok := bearer(r)
		if !ok {
			return challenge(http.StatusBadRequest, "invalid_request", "use Authorization: Bearer <token>")
		}
		info, _, err := s.inspect(r.Context(), nil, raw)
		if err != nil {
			return err
		}
		if !info.Active {
			return challenge(http.StatusUnauthorized, "invalid_token", "the access token is not active")
		}
		if info.Cnf != nil {
			// RFC 9449 §7.2: a token bound to a DPoP key is no bearer
			// token; the admin API takes bearer tokens only.
			return challenge(http.StatusUnauthorized, "invalid_token", "the access token is bound to a DPoP key; the admin API takes bearer tokens only")
		}
		if !slices.Contains(info.Aud, latch.AudienceAdmin) {
			return challenge(http.StatusUnauthorized, "invalid_token", "the access token is not for the admin API: request it with audience "+latch.AudienceAdmin)
		}
		if !slices.Contains(strings.Fields(info.Scope), latch.ScopeAdmin) {
			return challenge(http.StatusForbidden, "insufficient_scope", "the access token lacks scope latch:admin")
		}
		// A token that speaks for a user opens the admin API only while
		// the user holds the role, whatever scope it was granted: taking
		// the role away takes effect at once. A user ID is never a
		// client ID (Clients.Create), so sub names a user or the client.
		u, err := s.store.User(r.Context(), info.Sub)
		switch {
		case errors.Is(err, latch.ErrNotFound) && info.Sub == info.ClientID:
		case errors.Is(err, latch.ErrNotFound):
			return challenge(http.StatusUnauthorized, "invalid_token", "the access token's user no longer exists")
		case err != nil:
			return err
		case u.Disabled:
			return challenge(http.StatusUnauthorized, "invalid_token", "the access token's user is disabled")
		case !slices.Contains(u.Roles, latch.RoleAdmin):
			return challenge(http.StatusForbidden, "", "the access token's user does not hold the role "+latch.RoleAdmin)
		}
		return h(w, r)
	}
}

// readJSON decodes one JSON object of at most 64 KiB, refusing unknown
// fields so a typo in a field name is an error, not a silent default.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	bad := func(detail string) error {
		return &problem{Status: http.StatusBadRequest, Title: "Bad Request", Detail: detail}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &problem{Status: http.StatusUnsupportedMediaType, Title: "Unsupported Media Type", Detail: "send application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &problem{Status: http.StatusRequestEntityTooLarge, Title: "Request Entity Too Large", Detail: "body larger than 64 KiB"}
		}
		return bad("malformed JSON: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("body must hold exactly one JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func writeJSONBody(w http.ResponseWriter, v any) error { return json.NewEncoder(w).Encode(v) }

// users returns the Users manager of this server: its store, password
// policy and clock, and the feed to wake after revocations.
func (s *Server) users() *registry.Users {
	return &registry.Users{Store: s.store, Params: s.cfg.PasswordParams, MinPasswordLen: s.cfg.MinPasswordLen,
		Blocklist: s.cfg.PasswordBlocklist, Now: s.now, Rand: s.rand, Revoked: s.revoked}
}

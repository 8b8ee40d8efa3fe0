package server

import (
	"net/http"
	"strings"

	"github.com/latch-auth/latch/oauth"
)

// notFound answers a request no route has, in the form its caller reads:
// an RFC 6749 §5.2-shaped JSON error under /oauth2 and /.well-known, whose
// callers parse JSON, and the HTML error page anywhere else, where a
// browser is the likely caller (/admin/ has its own catch-all, an RFC 7807
// problem). A path that has routes for other methods is answered 405 with
// Allow, exactly as http.ServeMux answers it without a catch-all route.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	if allow := s.allowedMethods(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return nil
	}
	p := r.URL.Path
	switch {
	case underPath(p, "/oauth2"), underPath(p, "/.well-known"):
		(&oauth.Error{Code: oauth.ErrInvalidRequest, Status: http.StatusNotFound,
			Description: "no endpoint at " + p + "; /.well-known/openid-configuration lists this server's endpoints"}).Write(w)
	default:
		v := errorView{page: newPage("Page not found"), Calm: true,
			Detail: "There is no page at this address. Check the link you followed, or start again from your account page."}
		if err := s.renderPage(w, http.StatusNotFound, errorPage, v, true); err != nil {
			return err
		}
	}
	return nil
}

// underPath reports whether p is dir or below it.
func underPath(p, dir string) bool {
	rest, ok := strings.CutPrefix(p, dir)
	return ok && (rest == "" || rest[0] == '/')
}

// allowedMethods returns the methods that have a route for r's path other
// than the catch-all, sorted.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
		http.MethodPatch, http.MethodPost, http.MethodPut} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != catchAll {
			allow = append(allow, m)
		}
	}
	return allow
}

// catchAll is the pattern of notFound.
const catchAll = "/"

package bff

import (
	"net/http"
	"strings"
	"testing"
)

func TestProxy_Path_NeverLeavesUpstreamBase_EncodedDotSegmentsRefused(t *testing.T) {
	e := newUnitEnv(t)
	cookie := e.newSession(session{AccessToken: "the-access-token"})
	for _, tc := range []struct {
		target string
		code   int
		path   string // the escaped path the upstream receives; "" for none
	}{
		{"/api/items/1", 200, "/base/items/1"},
		{"/api/items/a%2Fb", 200, "/base/items/a%2Fb"},
		{"/api/..%2fbff%2fuser", 400, ""},
		{"/api/..%2Fbff%2Fuser", 400, ""},
		{"/api/x/..%2f..%2fbff%2fuser", 400, ""},
		{"/api/..%5cbff%5cuser", 400, ""},
		{"/api/..;/bff/user", 400, ""},
		{"/api/a/.%2e/b", 200, "/base/b"},
		{"/api/%2e%2e/bff/user", 400, ""},
	} {
		before := len(e.up.requests())
		w := e.do(http.MethodGet, tc.target, cookie, nil, nil)
		reqs := e.up.requests()
		if tc.path == "" {
			if len(reqs) != before {
				t.Errorf("GET %s reached the upstream as %s", tc.target, reqs[len(reqs)-1].URL.EscapedPath())
			}
			if w.Code != tc.code {
				t.Errorf("GET %s: %d, want %d", tc.target, w.Code, tc.code)
			}
			if w.Code == 400 && !strings.Contains(w.Body.String(), `"invalid_request"`) {
				t.Errorf("GET %s: 400 body %s", tc.target, w.Body)
			}
			continue
		}
		if w.Code != tc.code || len(reqs) != before+1 {
			t.Errorf("GET %s: %d, %d upstream requests", tc.target, w.Code, len(reqs)-before)
			continue
		}
		if got := reqs[len(reqs)-1].URL.EscapedPath(); got != tc.path {
			t.Errorf("GET %s: upstream got %s, want %s", tc.target, got, tc.path)
		}
	}
}

package oauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
)

func formRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestParseForm(t *testing.T) {
	tests := []struct {
		name       string
		req        func() *http.Request
		max        int64
		wantStatus int // 0: no error
	}{
		{"ok", func() *http.Request { return formRequest("grant_type=client_credentials") }, MaxFormBytes, 0},
		{"charset param is fine", func() *http.Request {
			r := formRequest("a=b")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
			return r
		}, MaxFormBytes, 0},
		{"GET refused", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/oauth2/token", nil) }, MaxFormBytes, 405},
		{"JSON refused", func() *http.Request {
			r := formRequest(`{"a":1}`)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, MaxFormBytes, 400},
		{"query string refused", func() *http.Request {
			r := formRequest("a=b")
			r.URL.RawQuery = "client_secret=x"
			return r
		}, MaxFormBytes, 400},
		{"oversized body is 413", func() *http.Request { return formRequest("a=" + strings.Repeat("x", 2000)) }, 1024, 413},
		{"repeated parameter refused", func() *http.Request { return formRequest("scope=a&scope=b") }, MaxFormBytes, 400},
		{"repeated resource allowed (RFC 8707)", func() *http.Request { return formRequest("resource=a&resource=b") }, MaxFormBytes, 0},
		{"bad escape", func() *http.Request { return formRequest("a=%zz") }, MaxFormBytes, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseForm(httptest.NewRecorder(), tt.req(), tt.max)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("ParseForm: %v", err)
				}
				return
			}
			if err == nil || err.Status != tt.wantStatus {
				t.Fatalf("ParseForm error = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
}

func TestParseClientAuth(t *testing.T) {
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
	}
	tests := []struct {
		name    string
		form    string
		setup   func(*http.Request)
		want    ClientAuth
		wantErr string
	}{
		{"basic", "", basic("app", "s3cret"), ClientAuth{ID: "app", Secret: "s3cret", Method: latch.AuthSecretBasic}, ""},
		{"basic is form-urlencoded (RFC 6749 §2.3.1)", "", basic("a:b c", "p+w/d"), ClientAuth{ID: "a:b c", Secret: "p+w/d", Method: latch.AuthSecretBasic}, ""},
		{"post", "client_id=app&client_secret=s", nil, ClientAuth{ID: "app", Secret: "s", Method: latch.AuthSecretPost}, ""},
		{"public", "client_id=spa", nil, ClientAuth{ID: "spa", Method: latch.AuthNone}, ""},
		{"assertion", "client_assertion_type=" + url.QueryEscape(AssertionTypeJWTBearer) + "&client_assertion=x.y.z", nil,
			ClientAuth{Method: latch.AuthPrivateKeyJWT, Assertion: "x.y.z"}, ""},
		{"two methods refused", "client_id=app&client_secret=s", basic("app", "s"), ClientAuth{}, ErrInvalidRequest},
		{"mismatched client_id refused", "client_id=other", basic("app", "s"), ClientAuth{}, ErrInvalidRequest},
		{"no credentials", "", nil, ClientAuth{}, ErrInvalidClient},
		{"secret without id", "client_secret=s", nil, ClientAuth{}, ErrInvalidClient},
		{"malformed basic", "", func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }, ClientAuth{}, ErrInvalidClient},
		{"wrong assertion type", "client_assertion_type=foo&client_assertion=x", nil, ClientAuth{}, ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := formRequest(tt.form)
			if tt.setup != nil {
				tt.setup(r)
			}
			form, perr := ParseForm(httptest.NewRecorder(), r, MaxFormBytes)
			if perr != nil {
				t.Fatal(perr)
			}
			got, err := ParseClientAuth(r, form)
			if tt.wantErr != "" {
				if err == nil || err.Code != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestInvalidClient_BasicGetsChallenge(t *testing.T) {
	w := httptest.NewRecorder()
	InvalidClient("nope", true).Write(w)
	if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("status %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("error responses must be no-store")
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != ErrInvalidClient {
		t.Fatalf("body %s", w.Body)
	}
}

func TestIntrospection_ZeroValueIsExactlyActiveFalse(t *testing.T) {
	b, err := json.Marshal(Introspection{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"active":false}` {
		t.Fatalf("inactive introspection = %s", b)
	}
}

func TestSplitScope(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"read", []string{"read"}, false},
		{"read write read", []string{"read", "write"}, false},
		{"latch:admin", []string{"latch:admin"}, false},
		{"read  write", nil, true},
		{" read", nil, true},
		{`a"b`, nil, true},
		{`a\b`, nil, true},
		{"é", nil, true},
	}
	for _, tt := range tests {
		got, err := SplitScope(tt.in)
		if (err != nil) != tt.wantErr || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("SplitScope(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// FuzzParseRequest feeds arbitrary bodies and Authorization headers through
// the parsing that every OAuth endpoint does first. It must never panic,
// and any error it returns must be a 4xx.
func FuzzParseRequest(f *testing.F) {
	f.Add("grant_type=client_credentials&scope=read", "Basic ZGV2OnNlY3JldA==")
	f.Add("client_id=a&client_secret=b&token=lt_at_x", "")
	f.Add("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c", "")
	f.Add("a=%zz&&=", "Basic %%%")
	f.Add("scope=a&scope=b", "Bearer x")
	f.Fuzz(func(t *testing.T, body, auth string) {
		r := formRequest(body)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		form, err := ParseForm(httptest.NewRecorder(), r, 4096)
		if err != nil {
			if err.Status < 400 || err.Status > 499 {
				t.Fatalf("status %d", err.Status)
			}
			return
		}
		if _, err := ParseClientAuth(r, form); err != nil && (err.Status < 400 || err.Status > 499) {
			t.Fatalf("status %d", err.Status)
		}
		if _, err := SplitScope(form.Get("scope")); err != nil && err.Status != 400 {
			t.Fatalf("status %d", err.Status)
		}
	})
}

// A 503 says when to come back: a store that could not commit a write
// (nothing of it was written) answers with it, and the client's retry is
// safe.
func TestUnavailable_RetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	Unavailable().Write(w)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("status %d, Retry-After %q; want 503 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	var body struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != ErrTemporarilyUnavailable {
		t.Fatalf("body %s (%v), want error %q", w.Body, err, ErrTemporarilyUnavailable)
	}
}

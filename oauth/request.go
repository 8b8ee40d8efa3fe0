package oauth

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/latch-auth/latch"
)

// MaxFormBytes is the default limit on a request body of the OAuth endpoints.
// Real requests are well under 8 KiB (the largest field is a JWT of at most
// 8 KiB); the limit leaves room without letting a client make us buffer
// megabytes.
const MaxFormBytes = 64 << 10

// ParseForm reads an application/x-www-form-urlencoded POST body of at most
// max bytes. Parameters in the query string are refused: RFC 6749 §2.3.1 and
// §3.2 keep credentials and grants out of URLs, which end up in logs. A
// parameter sent twice is refused (RFC 6749 §3.1).
func ParseForm(w http.ResponseWriter, r *http.Request, max int64) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Code: ErrInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed,
			Header: http.Header{"Allow": {http.MethodPost}}}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		// RFC 6749 §5.2: a malformed request is invalid_request with 400.
		return nil, BadRequest(ErrInvalidRequest, "send the parameters as application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, BadRequest(ErrInvalidRequest, "parameters must be in the request body, not the URL")
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: ErrInvalidRequest, Description: "request body too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, BadRequest(ErrInvalidRequest, "malformed form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && k != "resource" && k != "audience" {
			return nil, BadRequest(ErrInvalidRequest, "parameter "+k+" is repeated")
		}
	}
	return r.PostForm, nil
}

// Client assertion type of RFC 7523 §2.2.
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAuth is what a request presents to authenticate its client.
type ClientAuth struct {
	ID        string
	Secret    string
	Method    latch.AuthMethod
	Assertion string // private_key_jwt: the signed client assertion
}

// ParseClientAuth extracts client authentication per RFC 6749 §2.3.1
// (client_secret_basic, client_secret_post), RFC 7523 §2.2 (private_key_jwt)
// and, for public clients, a bare client_id. Using more than one method is
// refused (RFC 6749 §2.3). The result is not verified: the caller checks it
// against the registered client.
func ParseClientAuth(r *http.Request, form url.Values) (ClientAuth, *Error) {
	var (
		a       ClientAuth
		methods int
	)
	if h := r.Header.Get("Authorization"); h != "" {
		id, secret, ok := r.BasicAuth()
		if !ok {
			return a, InvalidClient("malformed Authorization header; use Basic with the client id and secret", true)
		}
		// RFC 6749 §2.3.1: both are form-urlencoded before being joined.
		var err1, err2 error
		a.ID, err1 = url.QueryUnescape(id)
		a.Secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || a.ID == "" {
			return a, InvalidClient("malformed Basic credentials", true)
		}
		a.Method = latch.AuthSecretBasic
		methods++
	}
	if s := form.Get("client_secret"); s != "" {
		a.Method = latch.AuthSecretPost
		a.Secret = s
		methods++
	}
	if as := form.Get("client_assertion"); as != "" || form.Get("client_assertion_type") != "" {
		if form.Get("client_assertion_type") != AssertionTypeJWTBearer {
			return a, BadRequest(ErrInvalidRequest, "client_assertion_type must be "+AssertionTypeJWTBearer)
		}
		if as == "" {
			return a, BadRequest(ErrInvalidRequest, "client_assertion is missing")
		}
		a.Method = latch.AuthPrivateKeyJWT
		a.Assertion = as
		methods++
	}
	if methods > 1 {
		return a, BadRequest(ErrInvalidRequest, "use exactly one client authentication method")
	}
	if id := form.Get("client_id"); id != "" {
		if a.Method == latch.AuthSecretBasic && id != a.ID {
			return a, BadRequest(ErrInvalidRequest, "client_id in the body differs from the Basic credentials")
		}
		a.ID = id
	}
	if a.Method == "" {
		a.Method = latch.AuthNone
	}
	if a.ID == "" && a.Method != latch.AuthPrivateKeyJWT {
		return a, InvalidClient("client authentication is required", false)
	}
	return a, nil
}

// SplitScope splits a space-delimited scope parameter (RFC 6749 §3.3),
// refusing characters outside NQCHAR and dropping repeats.
func SplitScope(s string) ([]string, *Error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return nil, BadRequest(ErrInvalidScope, "scope values are separated by single spaces")
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, BadRequest(ErrInvalidScope, "scope contains a character RFC 6749 §3.3 does not allow")
			}
		}
		dup := false
		for _, o := range out {
			if o == tok {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, tok)
		}
	}
	return out, nil
}

// RequestURIPrefix begins every request_uri the pushed authorization
// request endpoint hands out (RFC 9126 §2.2): a URN of RFC 9126 §7.1's
// registry followed by a random reference.
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// ClientAuthParams are the form parameters that carry client
// authentication (RFC 6749 §2.3.1, RFC 7523 §2.2) rather than a request.
var ClientAuthParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

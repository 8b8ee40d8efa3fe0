// Package oauth owns the wire of the authorization server's OAuth endpoints:
// request parsing (forms, client authentication) and the JSON responses and
// errors of RFC 6749, RFC 7009, RFC 7662, RFC 8414 and RFC 6750. It knows
// nothing of storage or token formats.
package oauth

import (
	"encoding/json"
	"net/http"
)

// Error codes of RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1 and RFC 8707 §2.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrInvalidScope            = "invalid_scope"
	ErrInvalidTarget           = "invalid_target"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	ErrInvalidToken            = "invalid_token"
	ErrInsufficientScope       = "insufficient_scope"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrRateLimited             = "rate_limited" // not an RFC code: 429 answers use it with Retry-After
	ErrUnsupportedResponseType = "unsupported_response_type"
)

// Error is an OAuth error response (RFC 6749 §5.2). Status is the HTTP status
// it is sent with; Header holds extra headers such as WWW-Authenticate or
// Retry-After.
type Error struct {
	Code        string      `json:"error"`
	Description string      `json:"error_description,omitempty"`
	Status      int         `json:"-"`
	Header      http.Header `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "oauth: " + e.Code
	}
	return "oauth: " + e.Code + ": " + e.Description
}

// Errorf-style constructors for the common cases. The description is shown to
// the client developer: say what was wrong and what to send instead.

// BadRequest is a 400 with the given code.
func BadRequest(code, description string) *Error {
	return &Error{Code: code, Description: description, Status: http.StatusBadRequest}
}

// InvalidClient is the 401 of RFC 6749 §5.2 for failed client authentication.
// When the client tried HTTP Basic, the response carries a Basic challenge.
func InvalidClient(description string, basic bool) *Error {
	e := &Error{Code: ErrInvalidClient, Description: description, Status: http.StatusUnauthorized}
	if basic {
		e.Header = http.Header{"Www-Authenticate": {`Basic realm="latch", charset="UTF-8"`}}
	}
	return e
}

// ServerError is a 500 whose description never reveals internals. It names
// requestID, under which the server logged the failure, so that whoever
// sees the answer can quote it to the operator.
func ServerError(requestID string) *Error {
	d := "the server failed to handle the request; it has been logged"
	if requestID != "" {
		d += " as request " + requestID
	}
	return &Error{Code: ErrServerError, Description: d, Status: http.StatusInternalServerError}
}

// Unavailable is a 503 for a backend that is down, or a write the store
// could not commit (nothing of it was written): a retry in a second is the
// right move, and Retry-After (RFC 9110 §10.2.3) says so.
func Unavailable() *Error {
	return &Error{Code: ErrTemporarilyUnavailable, Description: "a backend of the server is unavailable; retry later", Status: http.StatusServiceUnavailable,
		Header: http.Header{"Retry-After": {"1"}}}
}

// Write sends e as JSON with the no-store headers of RFC 6749 §5.1.
func (e *Error) Write(w http.ResponseWriter) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	WriteJSON(w, status, e)
}

// WriteJSON sends v as JSON with Cache-Control: no-store, as RFC 6749 §5.1
// requires for anything carrying tokens, and which is right for every
// answer of these endpoints.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Package latch holds the domain vocabulary of the latch authorization server:
// clients, tokens, revocations, signing keys, users and login sessions, the
// errors they produce, and the small store interfaces that backends implement.
//
// It imports nothing of ours and no storage driver; every other package points
// inward to it. Wire formats (JSON, forms) live in package oauth, token formats
// in package token.
package latch

import (
	"errors"
	"fmt"
)

// Error codes of the domain. They are stable strings: the HTTP layer maps each
// to a status in one place (server.statusOf), and logs carry them verbatim.
const (
	ECONFLICT     = "conflict"     // the record already exists
	EINTERNAL     = "internal"     // a bug or a failing dependency
	EINVALID      = "invalid"      // the input breaks a rule; Message says which
	ENOTFOUND     = "not_found"    // no such record (a normal answer, not a failure)
	EUNAUTHORIZED = "unauthorized" // the caller is not who it claims, or may not act
	EUNAVAILABLE  = "unavailable"  // a dependency is down; retrying later may work
)

// Error is the domain's error: a stable Code for programs and a Message for
// people. Backends wrap driver errors in EINTERNAL; "not found" is ENOTFOUND.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "latch: " + e.Code
	}
	return e.Message
}

// Is lets errors.Is match on the code alone, so
// errors.Is(Errorf(ENOTFOUND, "client %q not found", id), ErrNotFound) holds.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithCause returns e with cause kept in its chain beside it: ErrorCode and
// ErrorMessage read e, while errors.Is and errors.As still reach the cause
// (a driver's error, context.Canceled). Backends wrap driver errors so.
func WithCause(e *Error, cause error) error {
	return &causedError{err: e, cause: cause}
}

type causedError struct {
	err   *Error
	cause error
}

func (e *causedError) Error() string   { return e.err.Error() }
func (e *causedError) Unwrap() []error { return []error{e.err, e.cause} }

// Sentinels for errors.Is. Return Errorf with a specific message where it
// helps the reader; these compare equal to any *Error with the same code.
var (
	ErrNotFound = &Error{Code: ENOTFOUND, Message: "latch: not found"}
	ErrConflict = &Error{Code: ECONFLICT, Message: "latch: already exists"}
)

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, and a
// generic text for other errors so internal details never reach a client.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

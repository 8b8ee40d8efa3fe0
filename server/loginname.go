package server

import (
	"context"
	"fmt"

	"github.com/latch-auth/latch"
)

// LoginName says what users type in the login form's first field (and the
// password grant's username parameter).
type LoginName string

const (
	// LoginUsernameOrEmail accepts the username or the email. A string
	// that is both one user's username and another's email cannot exist
	// (Users refuses it), so the answer never depends on which is tried
	// first. The default: what people replacing Keycloak expect, and what
	// relying parties that key users by email make users remember.
	LoginUsernameOrEmail LoginName = "username-or-email"
	// LoginUsername accepts only the username: for operators whose emails
	// are shared addresses or are not the users' to know.
	LoginUsername LoginName = "username"
	// LoginEmail accepts only the email.
	LoginEmail LoginName = "email"
)

// DefaultLoginName is what /login accepts unless configured otherwise.
const DefaultLoginName = LoginUsernameOrEmail

// Validate refuses a value latch does not know.
func (n LoginName) Validate() error {
	switch n {
	case LoginUsernameOrEmail, LoginUsername, LoginEmail:
		return nil
	}
	return fmt.Errorf("login name %q: want %s, %s or %s", string(n), LoginUsernameOrEmail, LoginUsername, LoginEmail)
}

// loginUser finds the user a login form names, as cfg.LoginName allows;
// nil and no error when there is none.
func (s *Server) loginUser(ctx context.Context, name string) (*latch.User, error) {
	var u *latch.User
	var err error = latch.ErrNotFound
	if s.cfg.LoginName != LoginEmail {
		u, err = s.store.UserByName(ctx, name)
	}
	if latch.ErrorCode(err) == latch.ENOTFOUND && s.cfg.LoginName != LoginUsername {
		u, err = s.store.UserByEmail(ctx, name)
	}
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		return nil, nil
	}
	return u, err
}

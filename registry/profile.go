package registry

import (
	"context"
	"strings"

	"github.com/latch-auth/latch"
)

// ProfileSpec is a user's email and OIDC profile claims as the operator
// sets them, from CLI flags or admin API JSON; the profile's fields are
// flattened into the object (name, given_name, ...).
type ProfileSpec struct {
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	latch.Profile
}

// checkProfile validates spec as the store would, with the user package's
// messages, and refuses email_verified without an email.
func checkProfile(spec ProfileSpec) error {
	if spec.Email != "" {
		if _, err := latch.NormalizeEmail(spec.Email); err != nil {
			return latch.Errorf(latch.EINVALID, "user: %s", strings.TrimPrefix(latch.ErrorMessage(err), "latch: "))
		}
	} else if spec.EmailVerified {
		return latch.Errorf(latch.EINVALID, "user: email_verified needs an email")
	}
	if err := spec.Profile.Validate(); err != nil {
		return latch.Errorf(latch.EINVALID, "user: %s", strings.TrimPrefix(latch.ErrorMessage(err), "latch: "))
	}
	return nil
}

// checkLoginNames refuses a username that is another user's email and an
// email that is another user's username: /login accepts either (see
// LoginName), and one string must never name two users. The store's
// unique indexes cannot see across the two columns, so this is checked
// here, where users are created and changed.
func (m *Users) checkLoginNames(ctx context.Context, id, username, email string) error {
	if u, err := m.Store.UserByEmail(ctx, username); err == nil && u.ID != id {
		return latch.Errorf(latch.ECONFLICT, "user: username %q is another user's email", username)
	} else if err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
		return err
	}
	if email == "" {
		return nil
	}
	if u, err := m.Store.UserByName(ctx, email); err == nil && u.ID != id {
		return latch.Errorf(latch.ECONFLICT, "user: email %q is another user's username", email)
	} else if err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
		return err
	}
	return nil
}

// SetProfile replaces the user's email, email_verified and profile claims
// with spec's (fields left empty are cleared). It ends no session: the
// claims change in the next ID token and at /userinfo, and they grant
// nothing (roles and groups do, see SetRoles).
func (m *Users) SetProfile(ctx context.Context, ref string, spec ProfileSpec) (*UserView, error) {
	if err := checkProfile(spec); err != nil {
		return nil, err
	}
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := m.checkLoginNames(ctx, u.ID, u.Username, spec.Email); err != nil {
		return nil, err
	}
	u.Email, u.EmailVerified, u.Profile, u.UpdatedAt = spec.Email, spec.EmailVerified, spec.Profile, m.now().UTC()
	if err := m.Store.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	return UserViewOf(u), nil
}

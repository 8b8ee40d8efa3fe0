package registry

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/loginsession"
	"github.com/latch-auth/latch/password"
)

// DefaultMinPasswordLen is the shortest password Users accepts unless
// configured otherwise, in characters (Unicode code points, as NIST SP
// 800-63B-4 §3.1.1.2 counts them). NIST SP 800-63B-4 §3.1.1.2 requires
// 15 for a password used as the only factor and allows 8 only when it is
// one factor of several; latch's /login has no second factor, so every
// password it checks is single-factor. OWASP ASVS 5.0 V6.2.1 sets 8 as
// the floor and strongly recommends 15. Operators who put another factor
// in front of latch may lower it with Users.MinPasswordLen (latch serve
// and latch user: --min-password-length).
const DefaultMinPasswordLen = 15

// maxRoleLen and maxRoles bound roles and groups: they become claims in
// every token issued for the user.
const (
	maxRoleLen = 128
	maxRoles   = 64
)

// UserSpec is what an operator supplies to create a user, from CLI flags
// and stdin or admin API JSON. Password is only ever read from a request
// body or stdin, never from a URL or argv, and never logged.
type UserSpec struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Roles    []string `json:"roles,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
	ProfileSpec
}

// UserView is a user as shown by the CLI and the admin API. It never holds
// the password hash: a hash is an offline-guessable copy of the password.
type UserView struct {
	ID                string     `json:"id"`
	Username          string     `json:"username"`
	Disabled          bool       `json:"disabled"`
	HasPassword       bool       `json:"has_password"`
	Roles             []string   `json:"roles"`
	Groups            []string   `json:"groups"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	PasswordChangedAt *time.Time `json:"password_changed_at,omitempty"`
	Email             string     `json:"email,omitempty"`
	EmailVerified     bool       `json:"email_verified"`
	latch.Profile
	// SessionsEnded is set only in the answer to a change that ends the
	// user's login sessions (password, disable, roles, delete).
	SessionsEnded *int `json:"sessions_ended,omitempty"`
	// FamiliesRevoked, set with SessionsEnded, counts the refresh-token
	// families revoked with the sessions: each one's refresh and opaque
	// access tokens deleted and its JWT access tokens denylisted.
	FamiliesRevoked *int `json:"refresh_families_revoked,omitempty"`
}

// UserViewOf returns the public view of u, without the password hash.
func UserViewOf(u *latch.User) *UserView {
	v := &UserView{
		ID: u.ID, Username: u.Username, Disabled: u.Disabled, HasPassword: u.PasswordHash != "",
		Roles: nonNil(u.Roles), Groups: nonNil(u.Groups),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
		Email: u.Email, EmailVerified: u.EmailVerified, Profile: u.Profile,
	}
	if !u.PasswordChangedAt.IsZero() {
		t := u.PasswordChangedAt.UTC()
		v.PasswordChangedAt = &t
	}
	return v
}

// UsersStore is what Users needs of a store: the users and, to end their
// login sessions on a change, the sessions.
type UsersStore interface {
	latch.UserStore
	latch.SessionStore
	latch.GrantStore
}

// Users creates and manages users. The CLI and the admin API both use it,
// so a user created or changed either way obeys the same password policy
// and ends the same sessions.
//
// Password policy (OWASP ASVS 5.0 V6.2, NIST SP 800-63B-4 §3.1.1.2): at
// least MinPasswordLen characters, at most password.MaxPasswordLen bytes,
// valid UTF-8 (what a login form sends), not the username; no composition
// rules (no "one digit, one symbol"), which both documents forbid because
// they make passwords more predictable, not stronger. Every printable
// character, spaces and emoji included, is allowed.
type Users struct {
	Store UsersStore
	// Params are the argon2id parameters of new hashes; zero means
	// password.DefaultParams (OWASP's).
	Params password.Params
	// MinPasswordLen is the shortest password in characters; zero means
	// DefaultMinPasswordLen.
	MinPasswordLen int
	// Blocklist, when set, holds breached or common passwords that are
	// refused (NIST SP 800-63B-4 §3.1.1.2), in addition to the built-in
	// password.Common, which is always checked; see password.LoadBlocklist.
	Blocklist *password.Blocklist
	Now       func() time.Time
	Rand      io.Reader
	// Revoked, when set, is called after the hook revoked anything, so a
	// server wakes its revocation feed at once instead of at its next poll.
	Revoked func()
}

// Validate checks the configuration: parameters within the password
// package's bounds and a minimum length it can hash.
func (m *Users) Validate() error {
	if err := m.params().Validate(); err != nil {
		return err
	}
	if p := m.params(); p.SaltLen < password.MinNewSaltLen {
		return fmt.Errorf("user: salt length %d: new hashes need at least %d", p.SaltLen, password.MinNewSaltLen)
	}
	if n := m.MinPasswordLen; n < 0 || n > password.MaxPasswordLen {
		return fmt.Errorf("user: minimum password length %d out of range [1, %d]", n, password.MaxPasswordLen)
	}
	return nil
}

// CheckPassword reports, as an EINVALID error, whether pw breaks the
// policy for a user named username. The message never repeats pw.
func (m *Users) CheckPassword(username, pw string) error {
	bad := func(format string, args ...any) error {
		return latch.Errorf(latch.EINVALID, "user: password "+format, args...)
	}
	switch minLen := m.minPasswordLen(); {
	case pw == "":
		return bad("is empty")
	case len(pw) > password.MaxPasswordLen:
		return bad("is longer than %d bytes", password.MaxPasswordLen)
	case !utf8.ValidString(pw):
		// A browser sends UTF-8; a password that is not could never be
		// typed at /login.
		return bad("is not valid UTF-8")
	case utf8.RuneCountInString(pw) < minLen:
		return bad("is shorter than %d characters", minLen)
	case strings.EqualFold(pw, username):
		// ASVS asks for context-specific words to be refused; the username
		// is the first thing an attacker guesses.
		return bad("must not be the username")
	case password.Common().Contains(pw) || m.Blocklist.Contains(pw):
		return bad("appears in a list of breached or common passwords; choose another")
	}
	return nil
}

// Create validates spec, hashes the password and stores the user.
// Usernames are unique after latch.NormalizeUsername, so "Alice" conflicts
// with "alice" (ECONFLICT).
func (m *Users) Create(ctx context.Context, spec UserSpec) (*UserView, error) {
	if _, err := latch.NormalizeUsername(spec.Username); err != nil {
		return nil, latch.Errorf(latch.EINVALID, "user: %s", strings.TrimPrefix(latch.ErrorMessage(err), "latch: "))
	}
	roles, err := checkRoles("role", spec.Roles)
	if err != nil {
		return nil, err
	}
	groups, err := checkRoles("group", spec.Groups)
	if err != nil {
		return nil, err
	}
	if err := checkProfile(spec.ProfileSpec); err != nil {
		return nil, err
	}
	if err := m.CheckPassword(spec.Username, spec.Password); err != nil {
		return nil, err
	}
	if err := m.checkLoginNames(ctx, "", spec.Username, spec.Email); err != nil {
		return nil, err
	}
	// Users are addressed by ID or username (Get): a username that is
	// another user's ID would make that ambiguous.
	if _, err := m.Store.User(ctx, spec.Username); err == nil {
		return nil, latch.Errorf(latch.ECONFLICT, "user: username %q is another user's ID", spec.Username)
	} else if latch.ErrorCode(err) != latch.ENOTFOUND {
		return nil, err
	}
	id, err := newRecordID(m.rand())
	if err != nil {
		return nil, err
	}
	hash, err := password.Hash(spec.Password, m.params(), m.rand())
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	u := &latch.User{ID: id, Username: spec.Username, PasswordHash: hash, Disabled: spec.Disabled,
		Roles: roles, Groups: groups, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now,
		Email: spec.Email, EmailVerified: spec.EmailVerified, Profile: spec.Profile}
	if err := m.Store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return UserViewOf(u), nil
}

// Get returns the user whose ID is ref or, failing that, whose username is
// ref (case-insensitively, as latch.NormalizeUsername) or, failing that,
// whose email is ref (as latch.NormalizeEmail); ENOTFOUND if none.
func (m *Users) Get(ctx context.Context, ref string) (*UserView, error) {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	return UserViewOf(u), nil
}

// List returns every user, ordered by normalized username.
func (m *Users) List(ctx context.Context) ([]*UserView, error) {
	us, err := m.Store.Users(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]*UserView, 0, len(us))
	for _, u := range us {
		views = append(views, UserViewOf(u))
	}
	return views, nil
}

// SetPassword replaces the user's password and ends all of the user's
// login sessions: whoever knew the old password may be the reason for the
// change (OWASP Session Management Cheat Sheet, "Renew the Session ID After
// Any Privilege Level Change"; ASVS 5.0 V7.4).
func (m *Users) SetPassword(ctx context.Context, ref, pw string) (*UserView, error) {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := m.CheckPassword(u.Username, pw); err != nil {
		return nil, err
	}
	hash, err := password.Hash(pw, m.params(), m.rand())
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, now, now
	return m.update(ctx, u, "password change")
}

// SetDisabled disables or enables the user. Disabling ends all of the
// user's login sessions; enabling ends none (there are none to trust less).
// Disabling a disabled user ends its sessions again, so a call that failed
// half-way can simply be repeated.
func (m *Users) SetDisabled(ctx context.Context, ref string, disabled bool) (*UserView, error) {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	if u.Disabled != disabled {
		u.Disabled, u.UpdatedAt = disabled, m.now().UTC()
		if err := m.Store.UpdateUser(ctx, u); err != nil {
			return nil, err
		}
	}
	if !disabled {
		return UserViewOf(u), nil
	}
	return m.ended(ctx, u, "disable")
}

// SetRoles replaces the user's roles and groups and ends all of the
// user's login sessions, even when nothing changed (so a call that failed
// half-way can be repeated): security invariant 6 regenerates sessions on
// any privilege change, and the roles of a session's tokens are those of
// its login.
func (m *Users) SetRoles(ctx context.Context, ref string, roles, groups []string) (*UserView, error) {
	roles, err := checkRoles("role", roles)
	if err != nil {
		return nil, err
	}
	groups, err = checkRoles("group", groups)
	if err != nil {
		return nil, err
	}
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	u.Roles, u.Groups, u.UpdatedAt = roles, groups, m.now().UTC()
	return m.update(ctx, u, "role change")
}

// Delete removes the user and ends all of the user's login sessions, and
// returns the user as it was.
func (m *Users) Delete(ctx context.Context, ref string) (*UserView, error) {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	// The hook runs first, so that it sees the user and can count the
	// sessions; DeleteUser then removes, in its own transaction, any
	// session created in between.
	n, families, err := m.afterCredentialChange(ctx, u, "delete")
	if err != nil {
		return nil, err
	}
	if err := m.Store.DeleteUser(ctx, u.ID); err != nil {
		return nil, err
	}
	v := UserViewOf(u)
	v.SessionsEnded, v.FamiliesRevoked = &n, &families
	return v, nil
}

// LogoutEverywhere ends everything the user is signed in with: the "sign
// out everywhere" button, latch revoke --subject and the admin API's
// logout call. It runs the same policy hook as a password change and
// returns the user with the number of sessions it ended.
func (m *Users) LogoutEverywhere(ctx context.Context, ref string) (*UserView, error) {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	return m.ended(ctx, u, "logout everywhere")
}

// SessionView is a login session as the admin API shows it: its public
// sid (the OIDC sid claim), never anything that opens it.
type SessionView struct {
	SID           string    `json:"sid"`
	AuthTime      time.Time `json:"auth_time"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	Active        bool      `json:"active"`
}

// Sessions lists the user's login sessions, oldest first, live or not yet
// purged.
func (m *Users) Sessions(ctx context.Context, ref string) ([]SessionView, error) {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	ss, err := m.Store.UserSessions(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]SessionView, 0, len(ss))
	for _, s := range ss {
		out = append(out, SessionView{SID: s.SID(), AuthTime: s.AuthTime.UTC(), CreatedAt: s.CreatedAt.UTC(),
			LastSeenAt: s.LastSeenAt.UTC(), IdleExpiresAt: s.IdleExpiresAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
			Active: s.Active(now)})
	}
	return out, nil
}

// EndSession ends one login session of the user, named by its sid, as a
// logout in that browser would: with the grants it approved. ENOTFOUND if
// the user has no session with that sid.
func (m *Users) EndSession(ctx context.Context, ref, sid string) error {
	u, err := m.lookup(ctx, ref)
	if err != nil {
		return err
	}
	ss, err := m.Store.UserSessions(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if s.SID() == sid {
			return loginsession.End(ctx, m.Store, s, m.now(), m.Revoked)
		}
	}
	return latch.Errorf(latch.ENOTFOUND, "user: %q has no session %q", u.Username, sid)
}

// update stores u and runs the hook.
func (m *Users) update(ctx context.Context, u *latch.User, why string) (*UserView, error) {
	if err := m.Store.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	return m.ended(ctx, u, why)
}

func (m *Users) ended(ctx context.Context, u *latch.User, why string) (*UserView, error) {
	n, families, err := m.afterCredentialChange(ctx, u, why)
	if err != nil {
		return nil, fmt.Errorf("user: %s of %q was saved, but ending the user's sessions failed (repeat the command): %w", why, u.Username, err)
	}
	v := UserViewOf(u)
	v.SessionsEnded, v.FamiliesRevoked = &n, &families
	return v, nil
}

// afterCredentialChange is the one policy hook for credential changes: it runs
// after a password change, a role change, a disable, a "logout
// everywhere" and before a delete, and cuts every credential the user
// obtained under the old state:
//   - every login session (a new login makes a new session ID);
//   - every refresh-token family, which deletes their opaque tokens and
//     denylists their unexpired JWT access tokens by (iss, jti), all in
//     the revocation log that resource servers follow (invariants 4, 7).
//
// Families go first: a family revoked while its session still exists is
// harmless, a session deleted while its families live is not. It returns
// how many login sessions and refresh-token families it ended.
//
// Not covered: JWTs minted by token exchange from a family's opaque
// token (a gateway's) are not recorded in the family; they live at most
// ExchangedTokenTTL, and the gateway drops its cache entry when the
// opaque token's revocation reaches it through the feed.
func (m *Users) afterCredentialChange(ctx context.Context, u *latch.User, why string) (sessions, families int, err error) {
	families, err = m.Store.RevokeFamilies(ctx, latch.FamilyFilter{UserID: u.ID}, m.now())
	if err != nil {
		return 0, 0, err
	}
	sessions, err = m.Store.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		return 0, 0, err
	}
	if m.Revoked != nil && families > 0 {
		m.Revoked()
	}
	return sessions, families, nil
}

func (m *Users) lookup(ctx context.Context, ref string) (*latch.User, error) {
	if ref == "" {
		return nil, latch.Errorf(latch.EINVALID, "user: empty user ID or username")
	}
	u, err := m.Store.User(ctx, ref)
	if latch.ErrorCode(err) != latch.ENOTFOUND {
		return u, err
	}
	u, err = m.Store.UserByName(ctx, ref)
	if latch.ErrorCode(err) == latch.ENOTFOUND && strings.Contains(ref, "@") {
		u, err = m.Store.UserByEmail(ctx, ref)
	}
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		return nil, latch.Errorf(latch.ENOTFOUND, "user: no user with ID, username or email %q", ref)
	}
	return u, err
}

// checkRoles validates role or group names as the claim values they
// become: like scope tokens (RFC 6749 §3.3, printable ASCII without space,
// " or \), so that they can be joined with spaces and compared exactly.
// Duplicates are dropped; the order is kept.
func checkRoles(kind string, in []string) ([]string, error) {
	if len(in) > maxRoles {
		return nil, latch.Errorf(latch.EINVALID, "user: more than %d %ss", maxRoles, kind)
	}
	out := make([]string, 0, len(in))
	for _, r := range in {
		if r == "" || len(r) > maxRoleLen {
			return nil, latch.Errorf(latch.EINVALID, "user: %s names must be 1 to %d characters", kind, maxRoleLen)
		}
		for i := 0; i < len(r); i++ {
			if c := r[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return nil, latch.Errorf(latch.EINVALID, "user: %s %q: only printable ASCII without space, \" or \\ is allowed (as in scope values, RFC 6749 §3.3)", kind, r)
			}
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *Users) params() password.Params {
	if m.Params == (password.Params{}) {
		return password.DefaultParams
	}
	return m.Params
}

func (m *Users) minPasswordLen() int {
	if m.MinPasswordLen == 0 {
		return DefaultMinPasswordLen
	}
	return m.MinPasswordLen
}

func (m *Users) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Users) rand() io.Reader {
	if m.Rand == nil {
		return rand.Reader
	}
	return m.Rand
}

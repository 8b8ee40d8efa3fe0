package latch

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is a person who logs in at latch serve's /login.
type User struct {
	// ID is the stable identifier: the sub claim of the tokens and ID
	// tokens issued for the user. It never changes, even when Username does.
	ID string
	// Username is what the user types at login, stored as given. Usernames
	// are unique after NormalizeUsername: "Alice" and "alice" are one user.
	Username string
	// PasswordHash is a PHC-format argon2id string (package password).
	// Empty means the user cannot log in with a password.
	PasswordHash string
	// Disabled users cannot log in; disabling one should also delete their
	// sessions (SessionStore.DeleteUserSessions).
	Disabled bool
	Roles    []string
	Groups   []string

	// Email is the user's address as the operator gave it; empty when
	// none. Addresses are unique after NormalizeEmail. EmailVerified is
	// the operator's statement that the address belongs to the user:
	// latch sends no mail and checks nothing itself.
	Email         string
	EmailVerified bool
	// Profile holds the OIDC Core §5.1 claims of the profile scope that
	// the operator set.
	Profile Profile

	CreatedAt time.Time
	UpdatedAt time.Time
	// PasswordChangedAt is when PasswordHash was last set; zero if never.
	PasswordChangedAt time.Time
}

// MaxUsernameLen is the longest username, in bytes of UTF-8, before
// normalisation.
const MaxUsernameLen = 64

// NormalizeUsername returns the form in which usernames are unique and
// looked up: strings.ToLower of the name (Unicode simple lower case
// mapping, so "ALICE", "Alice" and "alice" are one name, and so are
// "KELVIN" written with the Kelvin sign U+212A and with a K).
//
// It refuses, with EINVALID, a name that is empty, longer than
// MaxUsernameLen bytes, not valid UTF-8, or that holds any character that
// is not printable (unicode.IsPrint: controls, format characters such as
// the zero-width space U+200B and the bidi overrides) or is a space of any
// kind, so that two names that look identical on an admin's screen
// because of an invisible character cannot both exist.
//
// It does not apply Unicode normalisation (NFC) or the PRECIS
// UsernameCaseMapped profile (RFC 8265 §3.3): the standard library has
// neither, and latch takes no dependency for it. So "é" typed as one code
// point and as "e" + U+0301 are two different names. Login forms send what
// the browser's input method produced, which is NFC in practice; an
// operator who needs RFC 8265 must normalise names before creating users.
func NormalizeUsername(name string) (string, error) {
	switch {
	case name == "":
		return "", Errorf(EINVALID, "latch: empty username")
	case len(name) > MaxUsernameLen:
		return "", Errorf(EINVALID, "latch: username longer than %d bytes", MaxUsernameLen)
	case !utf8.ValidString(name):
		return "", Errorf(EINVALID, "latch: username is not valid UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "", Errorf(EINVALID, "latch: username holds the character %U: only printable characters without spaces are allowed", r)
		}
	}
	return strings.ToLower(name), nil
}

package latch

import (
	"context"
	"time"
)

// ClientStore keeps registered clients.
type ClientStore interface {
	// CreateClient stores c; ECONFLICT if c.ID exists.
	CreateClient(ctx context.Context, c *Client) error
	// Client returns the client with id; ENOTFOUND if none.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients returns all clients ordered by ID.
	Clients(ctx context.Context) ([]*Client, error)
	// UpdateClient replaces the stored client c.ID, except its
	// RegistrationID, which only a new registration changes; ENOTFOUND if
	// none.
	UpdateClient(ctx context.Context, c *Client) error
	// DeleteClient removes the client and every opaque token issued to it,
	// appending a RevokeOpaque entry for each unexpired one in the same
	// transaction so that caches learn of it; ENOTFOUND if none.
	DeleteClient(ctx context.Context, id string) error
}

// TokenStore keeps opaque tokens, by hash.
type TokenStore interface {
	// CreateToken stores t; ECONFLICT if t.Hash exists. When it returns nil
	// the token is durable: it survives a crash of the process.
	CreateToken(ctx context.Context, t *Token) error
	// Token returns the token with hash, expired or not; ENOTFOUND if none.
	Token(ctx context.Context, hash []byte) (*Token, error)
}

// RevocationStore keeps the revocation log, which is also the JWT denylist.
type RevocationStore interface {
	// Revoke appends r to the log and sets r.Seq. For RevokeOpaque it
	// deletes the token r.TokenHash in the same transaction. Revoking what
	// is already revoked is not an error: r.Seq is then the existing entry's
	// and r.Created false; of concurrent calls for one entry exactly one
	// sees r.Created true.
	// When it returns nil the revocation is durable.
	Revoke(ctx context.Context, r *Revocation) error
	// IsRevoked reports whether the JWT (issuer, jti) is denylisted.
	IsRevoked(ctx context.Context, issuer, jti string) (bool, error)
	// IsRevokedOpaque reports whether the log holds a RevokeOpaque entry
	// for the token hash: the token was revoked, or deleted with its
	// family or client, and the entry is not yet purged. It tells an
	// opaque token revoked from one never issued, which a token lookup
	// alone cannot (both are not found).
	IsRevokedOpaque(ctx context.Context, hash []byte) (bool, error)
	// RevocationsSince returns up to limit entries with Seq > after, in Seq order.
	RevocationsSince(ctx context.Context, after int64, limit int) ([]*Revocation, error)
}

// KeyStore keeps signing keys.
type KeyStore interface {
	// CreateKey stores k; ECONFLICT if k.ID exists.
	CreateKey(ctx context.Context, k *Key) error
	// Keys returns every stored key ordered by CreatedAt, oldest first.
	Keys(ctx context.Context) ([]*Key, error)
	// UpdateKey replaces the stored key k.ID; ENOTFOUND if none.
	UpdateKey(ctx context.Context, k *Key) error
}

// UserStore keeps users. Usernames are unique after NormalizeUsername,
// and non-empty emails after NormalizeEmail.
type UserStore interface {
	// CreateUser stores u; ECONFLICT if u.ID exists or another user has the
	// same normalized username or email, EINVALID if u.ID is empty, u.Username
	// is refused by NormalizeUsername, a non-empty u.Email by NormalizeEmail
	// or u.Profile by Profile.Validate.
	CreateUser(ctx context.Context, u *User) error
	// User returns the user with id; ENOTFOUND if none.
	User(ctx context.Context, id string) (*User, error)
	// UserByName returns the user whose normalized username equals the
	// normalized username; ENOTFOUND if none, including when username is
	// one NormalizeUsername refuses (no such user can exist), so a login
	// form treats it like any unknown name.
	UserByName(ctx context.Context, username string) (*User, error)
	// UserByEmail returns the user whose normalized email equals the
	// normalized email (NormalizeEmail); ENOTFOUND if none, including
	// when email is one NormalizeEmail refuses.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// Users returns all users ordered by normalized username (byte order).
	Users(ctx context.Context) ([]*User, error)
	// UpdateUser replaces the stored user u.ID; ENOTFOUND if none,
	// ECONFLICT if the new username or email belongs to another user,
	// EINVALID as for CreateUser.
	UpdateUser(ctx context.Context, u *User) error
	// RehashPassword replaces the user's password hash with newHash only
	// if it still is oldHash (the same password under new parameters,
	// at login), and reports whether it did. A password change, a
	// deletion or another rehash in between wins; PasswordChangedAt and
	// the other fields are not touched.
	RehashPassword(ctx context.Context, id, oldHash, newHash string) (bool, error)
	// DeleteUser removes the user and, in the same transaction, all of the
	// user's sessions; ENOTFOUND if none.
	DeleteUser(ctx context.Context, id string) error
}

// SessionStore keeps login sessions, by the SHA-256 of their ID. Session
// is on the path of every request of a logged-in browser.
type SessionStore interface {
	// CreateSession stores s; ECONFLICT if s.IDHash exists, EINVALID if
	// s.IDHash is empty or s.UserID names no user. When it returns nil the
	// session is durable.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with idHash, expired or not (Active
	// decides); ENOTFOUND if none.
	Session(ctx context.Context, idHash []byte) (*Session, error)
	// TouchSession sets the session's LastSeenAt and IdleExpiresAt;
	// ENOTFOUND if none. It never moves ExpiresAt (the absolute timeout).
	TouchSession(ctx context.Context, idHash []byte, lastSeen, idleExpires time.Time) error
	// DeleteSession removes the session (logout); ENOTFOUND if none.
	DeleteSession(ctx context.Context, idHash []byte) error
	// UserSessions returns the user's sessions, expired or not, oldest
	// first; none (and no error) for a user without sessions or no such
	// user. For the admin API's session list.
	UserSessions(ctx context.Context, userID string) ([]*Session, error)
	// DeleteUserSessions removes every session of the user (logout
	// everywhere, password change, disabling) and returns how many it
	// removed; 0 and no error for a user without sessions or no such user.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// Store is everything the authorization server persists. Every backend
// implements it and passes storetest.Run.
type Store interface {
	ClientStore
	TokenStore
	RevocationStore
	KeyStore
	UserStore
	SessionStore
	GrantStore
	PushedRequestStore
	ConsentStore
	// PurgeExpired deletes tokens, revocation entries, authorization codes,
	// families, IssuedJWT records and pushed requests whose ExpiresAt is
	// before now, and
	// sessions whose IdleExpiresAt or ExpiresAt is before now (sessions that
	// can no longer be Active), and returns how many rows it removed.
	PurgeExpired(ctx context.Context, now time.Time) (int64, error)
	// Ping checks the backend answers; /readyz uses it.
	Ping(ctx context.Context) error
	Close() error
}

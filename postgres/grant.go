package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

// Authorization codes and refresh families (latch.GrantStore).
//
// Every method that reads and then writes does both in one transaction
// that locks what it decides on: RedeemCode the code row, RotateRefresh the
// family row and then the token row, revokeFamiliesTx the family rows (in
// ID order) before it touches their tokens. Two redemptions of one code, or
// two rotations of one refresh token, are thereby serialized: the second
// waits for the first to commit, then reads what it wrote. A reuse revokes
// the family and commits that before ErrReused is returned: the revocation
// must not be rolled back with the refused request.

const codeColumns = `hash, client_id, user_id, session_id, redirect_uri, scope, audience,
	nonce, code_challenge, auth_time, family_id, issued_at, expires_at, used_at, dpop_jkt`

const familyColumns = `id, client_id, user_id, COALESCE(session_id, ''), scope, audience,
	auth_time, created_at, expires_at, revoked_at`

// errUnauthorized is EUNAUTHORIZED with a message for op.
func errUnauthorized(op, format string, args ...any) error {
	return latch.Errorf(latch.EUNAUTHORIZED, "postgres: "+op+": "+format, args...)
}

// CreateCode stores c; ECONFLICT if c.Hash exists, EINVALID if c.Hash or
// c.FamilyID is empty or c.ClientID or c.UserID names no client or user.
func (db *DB) CreateCode(ctx context.Context, c *latch.AuthCode) error {
	const op = "create code"
	if len(c.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "postgres: %s: empty hash", op)
	}
	if c.FamilyID == "" {
		return latch.Errorf(latch.EINVALID, "postgres: %s: empty family id: a reused code could revoke nothing", op)
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_codes (`+codeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.Hash, c.ClientID, c.UserID, c.SessionID, c.RedirectURI, listArg(c.Scope), listArg(c.Audience),
		c.Nonce, c.CodeChallenge, timeArg(c.AuthTime), c.FamilyID, timeArg(c.IssuedAt),
		timeArg(c.ExpiresAt), timeArg(c.UsedAt), c.DPoPJKT)
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "postgres: %s: code exists", op)
	case isForeignKey(err):
		return latch.Errorf(latch.EINVALID, "postgres: %s: client %q or user %q does not exist", op, c.ClientID, c.UserID)
	}
	return internal(op, err)
}

func scanCode(row pgx.Row) (*latch.AuthCode, error) {
	var (
		c                                     latch.AuthCode
		authTime, issuedAt, expiresAt, usedAt *time.Time
	)
	if err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.SessionID, &c.RedirectURI, &c.Scope, &c.Audience,
		&c.Nonce, &c.CodeChallenge, &authTime, &c.FamilyID, &issuedAt, &expiresAt, &usedAt, &c.DPoPJKT); err != nil {
		return nil, err
	}
	c.AuthTime, c.IssuedAt, c.ExpiresAt, c.UsedAt = timeOf(authTime), timeOf(issuedAt), timeOf(expiresAt), timeOf(usedAt)
	c.Scope, c.Audience = listOf(c.Scope), listOf(c.Audience)
	return &c, nil
}

// Code returns the code with hash, used or not; ENOTFOUND if none.
func (db *DB) Code(ctx context.Context, hash []byte) (*latch.AuthCode, error) {
	c, err := scanCode(db.pool.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: code not found")
	}
	if err != nil {
		return nil, internal("code", err)
	}
	return c, nil
}

// RedeemCode uses the code with hash once, as latch.GrantStore documents:
// ENOTFOUND, EUNAUTHORIZED when expired, ErrReused (after revoking the
// family code.FamilyID) when used before; otherwise it marks the code used,
// stores f and writes issue. EINVALID if f is nil, f.ID is not the code's
// FamilyID, or issue is not of the family; ECONFLICT if f or a token of
// issue exists. On any error but ErrReused nothing is written.
func (db *DB) RedeemCode(ctx context.Context, hash []byte, now time.Time, f *latch.Family, issue latch.Issue) error {
	const op = "redeem code"
	if f == nil {
		return latch.Errorf(latch.EINVALID, "postgres: %s: no family", op)
	}
	var reused error
	err := db.withTx(ctx, op, func(tx pgx.Tx) error {
		reused = nil
		// FOR UPDATE: a concurrent redemption waits here until this one
		// commits, then reads the code with used_at set.
		c, err := scanCode(tx.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1 FOR UPDATE`, hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return latch.Errorf(latch.ENOTFOUND, "postgres: %s: code not found", op)
		}
		if err != nil {
			return internal(op, err)
		}
		switch latch.RedemptionOf(c, now, f.ID) {
		case latch.RedeemReuse:
			// The family may be gone already (purged, or revoked and its
			// client deleted): nothing is left to revoke then.
			if _, err := revokeFamiliesTx(ctx, tx, op, now, "id = $2", c.FamilyID); err != nil {
				return err
			}
			reused = latch.Reusedf("postgres: %s: code used at %v is used again; family %s revoked",
				op, c.UsedAt, c.FamilyID)
			return nil
		case latch.RedeemExpired:
			return errUnauthorized(op, "code expired at %v", c.ExpiresAt)
		case latch.RedeemOtherFamily:
			return latch.Errorf(latch.EINVALID, "postgres: %s: family %q is not the code's family %q", op, f.ID, c.FamilyID)
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_codes SET used_at = $1, expires_at = $2 WHERE hash = $3`,
			now, timeArg(latch.UsedCodeExpiry(c, f)), hash); err != nil {
			return internal(op, err)
		}
		if err := createFamilyTx(ctx, tx, op, f); err != nil {
			return err
		}
		return writeIssue(ctx, tx, op, f.ID, issue)
	})
	if err != nil {
		return err
	}
	return reused
}

// CreateFamily stores f and writes issue in one transaction
// (latch.GrantStore): the password grant's family, which no code starts.
func (db *DB) CreateFamily(ctx context.Context, f *latch.Family, issue latch.Issue) error {
	const op = "create family"
	if f == nil {
		return latch.Errorf(latch.EINVALID, "postgres: %s: no family", op)
	}
	return db.withTx(ctx, op, func(tx pgx.Tx) error {
		if err := createFamilyTx(ctx, tx, op, f); err != nil {
			return err
		}
		return writeIssue(ctx, tx, op, f.ID, issue)
	})
}

func createFamilyTx(ctx context.Context, tx pgx.Tx, op string, f *latch.Family) error {
	if f.ID == "" {
		return latch.Errorf(latch.EINVALID, "postgres: %s: empty family id", op)
	}
	_, err := tx.Exec(ctx, `INSERT INTO families (id, client_id, user_id, session_id, scope, audience,
		auth_time, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		f.ID, f.ClientID, f.UserID, textArg(f.SessionID), listArg(f.Scope), listArg(f.Audience),
		timeArg(f.AuthTime), timeArg(f.CreatedAt), timeArg(f.ExpiresAt), timeArg(f.RevokedAt))
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "postgres: %s: family %q exists", op, f.ID)
	case isForeignKey(err):
		return latch.Errorf(latch.EINVALID, "postgres: %s: client %q or user %q does not exist", op, f.ClientID, f.UserID)
	}
	return internal(op, err)
}

// writeIssue writes what a grant issued into family familyID, in tx.
// Opaque tokens must carry the family's ID, so that revoking the family
// finds them, and the refresh token must be of Kind refresh.
func writeIssue(ctx context.Context, tx pgx.Tx, op, familyID string, issue latch.Issue) error {
	for _, t := range []struct {
		tok  *latch.Token
		kind latch.TokenKind
	}{{issue.Refresh, latch.KindRefresh}, {issue.Access, latch.KindAccess}} {
		if t.tok == nil {
			continue
		}
		if t.tok.Kind != t.kind || t.tok.FamilyID != familyID {
			return latch.Errorf(latch.EINVALID, "postgres: %s: issued %s token %s is of kind %q and family %q, want %q and %q",
				op, t.kind, t.tok.ID, t.tok.Kind, t.tok.FamilyID, t.kind, familyID)
		}
		if err := execInsertToken(ctx, tx, op, t.tok); err != nil {
			return err
		}
	}
	if j := issue.JWT; j != nil {
		if j.Issuer == "" || j.JTI == "" {
			return latch.Errorf(latch.EINVALID, "postgres: %s: issued JWT needs issuer and jti", op)
		}
		_, err := tx.Exec(ctx, `INSERT INTO family_jwts (family_id, issuer, jti, expires_at) VALUES ($1, $2, $3, $4)`,
			familyID, j.Issuer, j.JTI, timeArg(j.ExpiresAt))
		if isUnique(err) {
			return latch.Errorf(latch.ECONFLICT, "postgres: %s: JWT %s of %s exists", op, j.JTI, j.Issuer)
		}
		if err != nil {
			return internal(op, err)
		}
	}
	return nil
}

// familyScan receives a families row as familyColumns lists it.
type familyScan struct {
	f                                         latch.Family
	authTime, createdAt, expiresAt, revokedAt *time.Time
}

func (s *familyScan) dest() []any {
	return []any{&s.f.ID, &s.f.ClientID, &s.f.UserID, &s.f.SessionID, &s.f.Scope, &s.f.Audience,
		&s.authTime, &s.createdAt, &s.expiresAt, &s.revokedAt}
}

func (s *familyScan) family() *latch.Family {
	f := s.f
	f.AuthTime, f.CreatedAt, f.ExpiresAt, f.RevokedAt = timeOf(s.authTime), timeOf(s.createdAt),
		timeOf(s.expiresAt), timeOf(s.revokedAt)
	f.Scope, f.Audience = listOf(f.Scope), listOf(f.Audience)
	return &f
}

// Family returns the family with id, revoked or not; ENOTFOUND if none.
func (db *DB) Family(ctx context.Context, id string) (*latch.Family, error) {
	var fs familyScan
	err := db.pool.QueryRow(ctx, `SELECT `+familyColumns+` FROM families WHERE id = $1`, id).Scan(fs.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: family %q not found", id)
	}
	if err != nil {
		return nil, internal("family", err)
	}
	return fs.family(), nil
}

// selectRefreshChain reads what the refresh grant checks before it mints,
// in one round trip: the token, its family and the family's user.
var selectRefreshChain = `SELECT t.kind, t.id, t.client_id, t.subject, t.scope, t.audience,
	COALESCE(t.family_id, ''), t.issued_at, t.expires_at, t.rotated_at, t.registration_id, t.jkt,
	f.id, f.client_id, f.user_id, COALESCE(f.session_id, ''), f.scope, f.audience,
	f.auth_time, f.created_at, f.expires_at, f.revoked_at,
	` + qualified("u", userColumns) + `
	FROM tokens AS t JOIN families AS f ON f.id = t.family_id JOIN users AS u ON u.id = f.user_id
	WHERE t.hash = $1 AND t.kind = 'refresh'`

// RefreshChain returns the refresh token with hash, its family and its
// user, as latch.GrantStore documents, in one query.
func (db *DB) RefreshChain(ctx context.Context, hash []byte) (*latch.Token, *latch.Family, *latch.User, error) {
	const op = "refresh chain"
	var (
		ts tokenScan
		fs familyScan
	)
	u, err := scanUser(prefixScan{db.pool.QueryRow(ctx, selectRefreshChain, hash), append(ts.dest(), fs.dest()...)})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil, latch.Errorf(latch.ENOTFOUND, "postgres: %s: refresh token not found", op)
	}
	if err != nil {
		return nil, nil, nil, internal(op, err)
	}
	return ts.token(hash), fs.family(), u, nil
}

// prefixScan scans a row whose first columns go to pre and the rest to
// what Scan is given: a joined row read with another type's scan function.
type prefixScan struct {
	row pgx.Row
	pre []any
}

func (p prefixScan) Scan(dest ...any) error { return p.row.Scan(append(p.pre, dest...)...) }

// RotateRefresh uses the refresh token with hash once, as latch.GrantStore
// documents, in one transaction that locks the token's family and then the
// token. Besides the documented results, it returns the token and family
// with EUNAUTHORIZED and ErrReused too (for the caller's log; the family
// then has RevokedAt set), and EINVALID or ECONFLICT, writing nothing, if
// issue is not of the family or repeats a stored token.
func (db *DB) RotateRefresh(ctx context.Context, hash []byte, now time.Time, grace time.Duration, issue latch.Issue) (*latch.Token, *latch.Family, error) {
	const op = "rotate refresh"
	var (
		tok    *latch.Token
		fam    *latch.Family
		reused error
	)
	err := db.withTx(ctx, op, func(tx pgx.Tx) error {
		tok, fam, reused = nil, nil, nil
		issue := issue // RotateRetry drops issue.Refresh; a rerun of the transaction starts afresh
		notFound := latch.Errorf(latch.ENOTFOUND, "postgres: %s: refresh token not found", op)
		// The family first, unlocked: a token's family never changes. Then
		// the family's row lock, which every rotation and revocation of the
		// family takes before it touches the family's tokens.
		var familyID string
		err := tx.QueryRow(ctx, `SELECT COALESCE(family_id, '') FROM tokens
			WHERE hash = $1 AND kind = 'refresh'`, hash).Scan(&familyID)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && familyID == "") {
			return notFound
		}
		if err != nil {
			return internal(op, err)
		}
		var fs familyScan
		err = tx.QueryRow(ctx, `SELECT `+familyColumns+` FROM families WHERE id = $1 FOR UPDATE`, familyID).Scan(fs.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound // deleted with its client or user
		}
		if err != nil {
			return internal(op, err)
		}
		// Read again under the family's lock: a rotation or revocation of
		// the family that committed while this one waited has changed or
		// deleted it. The token itself is not locked here: the log lock
		// must come before token row locks (see lockLog), and a reuse
		// takes it below.
		var ts tokenScan
		err = tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens
			WHERE hash = $1 AND kind = 'refresh'`, hash).Scan(ts.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound
		}
		if err != nil {
			return internal(op, err)
		}
		tok, fam = ts.token(hash), fs.family()
		rot, refused := latch.RotationOf(tok, fam, now, grace)
		switch rot {
		case 0:
			return errUnauthorized(op, "%s", refused)
		case latch.RotateFirst:
			// rotated_at IS NULL: only the first rotation marks it. Zero
			// rows: Revoke deleted the token since it was read.
			tag, err := tx.Exec(ctx, `UPDATE tokens SET rotated_at = $1
				WHERE hash = $2 AND rotated_at IS NULL`, now, hash)
			if err != nil {
				return internal(op, err)
			}
			if tag.RowsAffected() == 0 {
				return notFound
			}
			tok.RotatedAt = now.Truncate(time.Microsecond).UTC()
		case latch.RotateRetry:
			// A concurrent duplicate or a retry: the same successor as
			// the first rotation, already stored.
			if issue.Refresh != nil {
				var stored bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens
					WHERE hash = $1 AND kind = 'refresh' AND family_id = $2)`,
					issue.Refresh.Hash, fam.ID).Scan(&stored); err != nil {
					return internal(op, err)
				}
				if !stored {
					return errUnauthorized(op, "refresh token %s was rotated at %v into another successor than this retry's", tok.ID, tok.RotatedAt)
				}
				issue.Refresh = nil
			}
		case latch.RotateReuse:
			if _, err := revokeFamiliesTx(ctx, tx, op, now, "id = $2", fam.ID); err != nil {
				return err
			}
			fam.RevokedAt = now.Truncate(time.Microsecond).UTC()
			reused = latch.Reusedf("postgres: %s: refresh token %s rotated at %v is used again; family %s revoked",
				op, tok.ID, tok.RotatedAt, fam.ID)
			return nil
		}
		return writeIssue(ctx, tx, op, fam.ID, issue)
	})
	switch {
	case err == nil && reused == nil:
		return tok, fam, nil
	case err == nil:
		return tok, fam, reused
	case latch.ErrorCode(err) == latch.EUNAUTHORIZED:
		return tok, fam, err
	}
	return nil, nil, err
}

// RevokeFamily revokes the family with id as latch.GrantStore documents;
// ENOTFOUND if none. Revoking it again repeats the deletions, which find
// nothing left, and keeps the first RevokedAt.
func (db *DB) RevokeFamily(ctx context.Context, id string, now time.Time) error {
	const op = "revoke family"
	return db.withTx(ctx, op, func(tx pgx.Tx) error {
		n, err := lockFamilies(ctx, tx, op, "id = $1", id)
		if err != nil {
			return err
		}
		if n == 0 {
			return latch.Errorf(latch.ENOTFOUND, "postgres: %s: family %q not found", op, id)
		}
		_, err = revokeFamiliesTx(ctx, tx, op, now, "id = $2", id)
		return err
	})
}

// RevokeFamilies revokes every family of f.UserID or of f.SessionID that is
// not revoked yet, in one transaction, and returns how many; EINVALID unless
// exactly one field of f is set.
func (db *DB) RevokeFamilies(ctx context.Context, f latch.FamilyFilter, now time.Time) (int, error) {
	const op = "revoke families"
	var column, arg string
	switch {
	case f.UserID != "" && f.SessionID == "":
		column, arg = "user_id", f.UserID
	case f.SessionID != "" && f.UserID == "":
		column, arg = "session_id", f.SessionID
	default:
		return 0, latch.Errorf(latch.EINVALID, "postgres: %s: set exactly one of UserID and SessionID", op)
	}
	var n int
	err := db.withTx(ctx, op, func(tx pgx.Tx) error {
		// Codes not redeemed yet would start new families after the
		// sign-out or credential change: they go too (auth_codes has the
		// same user_id and session_id columns). First, so that a
		// redemption in flight commits before the families are read, and
		// its family is revoked with the others.
		if _, err := tx.Exec(ctx, `DELETE FROM auth_codes WHERE used_at IS NULL AND `+column+` = $1`, arg); err != nil {
			return internal(op, err)
		}
		if f.UserID != "" {
			// A family the password grant is creating for the user holds
			// a key-share lock on the user row (the foreign key): wait for
			// it to commit, and keep new ones out until this commits.
			if err := lockRow(ctx, tx, op, "users", f.UserID); err != nil {
				return err
			}
		}
		var err error
		n, err = revokeFamiliesTx(ctx, tx, op, now, column+" = $2", arg)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// lockFamilies locks, in tx, the families cond selects (a condition with
// one placeholder $1, for arg), in ID order so that two transactions
// locking overlapping sets cannot deadlock, and returns how many there are.
func lockFamilies(ctx context.Context, tx pgx.Tx, op, cond string, arg any) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM families WHERE `+cond+` ORDER BY id COLLATE "C" FOR UPDATE`, arg)
	if err != nil {
		return 0, internal(op, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, internal(op, err)
	}
	return n, nil
}

// lockRow locks the row of table (users or clients) with id, if there is
// one, so that rows referring to it cannot be inserted until tx ends.
func lockRow(ctx context.Context, tx pgx.Tx, op, table, id string) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+table+` WHERE id = $1 FOR UPDATE`, id); err != nil {
		return internal(op, err)
	}
	return nil
}

// lockParent locks, in tx, the unredeemed and redeemed codes of the client
// or user (column client_id or user_id) with id and then its row, in the
// order a redemption takes them (code, then the parent's key-share lock of
// the family's foreign key), so that a redemption or grant in flight
// commits before the families are read, and none starts until tx ends.
func lockParent(ctx context.Context, tx pgx.Tx, op, table, column, id string) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM auth_codes WHERE `+column+` = $1
		ORDER BY hash FOR UPDATE`, id); err != nil {
		return internal(op, err)
	}
	return lockRow(ctx, tx, op, table, id)
}

// revokeFamiliesTx revokes, in tx, the families that cond selects (a
// condition on families with one placeholder $2, for arg): it locks them,
// marks those not yet revoked revoked at now, and for all of them appends
// RevokeOpaque entries for their unexpired tokens and deletes the tokens,
// and appends RevokeJWT entries for their unexpired JWTs and forgets the
// JWTs. It returns how many families it marked.
func revokeFamiliesTx(ctx context.Context, tx pgx.Tx, op string, now time.Time, cond string, arg any) (int, error) {
	// cond is written for $2 (after now); lockFamilies and the DELETEs take
	// arg alone, as $1.
	cond1 := replacePlaceholder(cond)
	if _, err := lockFamilies(ctx, tx, op, cond1, arg); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `UPDATE families SET revoked_at = $1
		WHERE revoked_at IS NULL AND `+cond, now, arg)
	if err != nil {
		return 0, internal(op, err)
	}
	inFamilies := `family_id IN (SELECT id FROM families WHERE ` + cond + `)`
	inFamilies1 := `family_id IN (SELECT id FROM families WHERE ` + cond1 + `)`
	if err := appendOpaqueRevocations(ctx, tx, op, now, inFamilies, arg); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE `+inFamilies1, arg); err != nil {
		return 0, internal(op, err)
	}
	if err := appendJWTRevocations(ctx, tx, op, now, inFamilies, arg); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM family_jwts WHERE `+inFamilies1, arg); err != nil {
		return 0, internal(op, err)
	}
	return int(tag.RowsAffected()), nil
}

// replacePlaceholder rewrites a condition's $2 as $1, for the statements
// that take the condition's argument alone.
func replacePlaceholder(cond string) string {
	return strings.ReplaceAll(cond, "$2", "$1")
}

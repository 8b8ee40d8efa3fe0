package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latch-auth/latch"
	sqlite3 "modernc.org/sqlite/lib"
)

// Authorization codes and refresh families (latch.GrantStore).
//
// Every method that reads and then writes does both in one IMMEDIATE
// transaction on the single writer connection, so two redemptions of one
// code, or two rotations of one refresh token, are serialized: the second
// sees what the first wrote. A reuse revokes the family and commits that
// before ErrReused is returned: the revocation must not be rolled back with
// the refused request.

const codeColumns = `hash, client_id, user_id, session_id, redirect_uri, scope, audience,
	nonce, code_challenge, auth_time, family_id, issued_at, expires_at, used_at, dpop_jkt`

const selectCode = `SELECT ` + codeColumns + ` FROM auth_codes WHERE hash = ?`

const useCode = `UPDATE auth_codes SET used_at = ?, expires_at = ? WHERE hash = ?`

const familyColumns = `id, client_id, user_id, COALESCE(session_id, ''), scope, audience,
	auth_time, created_at, expires_at, revoked_at`

const selectFamily = `SELECT ` + familyColumns + ` FROM families WHERE id = ?`

const insertFamily = `INSERT INTO families (id, client_id, user_id, session_id, scope, audience,
	auth_time, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// selectRefresh reads a refresh token with its family in one statement: the
// first step of every refresh grant. The inner join makes a token whose
// family is gone (deleted with its client or user) not found.
const selectRefresh = `SELECT t.kind, t.id, t.client_id, t.subject, t.scope, t.audience,
	COALESCE(t.family_id, ''), t.issued_at, t.expires_at, t.rotated_at,
	f.id, f.client_id, f.user_id, COALESCE(f.session_id, ''), f.scope, f.audience,
	f.auth_time, f.created_at, f.expires_at, f.revoked_at
	FROM tokens AS t JOIN families AS f ON f.id = t.family_id
	WHERE t.hash = ? AND t.kind = 'refresh'`

// selectRefreshChain reads what the refresh grant checks before it mints,
// in one statement on a reader: the token (with its client registration
// and DPoP key), its family and the family's user. A reader's page cache
// is emptied by every commit of the writer, so under load each separate
// read paid for its read transaction and its b-tree descent again.
var selectRefreshChain = `SELECT t.kind, t.id, t.client_id, t.subject, t.scope, t.audience,
	COALESCE(t.family_id, ''), t.issued_at, t.expires_at, t.rotated_at, t.registration_id, t.jkt,
	f.id, f.client_id, f.user_id, COALESCE(f.session_id, ''), f.scope, f.audience,
	f.auth_time, f.created_at, f.expires_at, f.revoked_at,
	` + qualified("u", userColumns) + `
	FROM tokens AS t JOIN families AS f ON f.id = t.family_id JOIN users AS u ON u.id = f.user_id
	WHERE t.hash = ? AND t.kind = 'refresh'`

const rotateToken = `UPDATE tokens SET rotated_at = ? WHERE hash = ?`

const insertFamilyJWT = `INSERT INTO family_jwts (family_id, issuer, jti, expires_at) VALUES (?, ?, ?, ?)`

// errUnauthorized is EUNAUTHORIZED with a message for op.
func errUnauthorized(op, format string, args ...any) error {
	return latch.Errorf(latch.EUNAUTHORIZED, "sqlite: "+op+": "+format, args...)
}

// CreateCode stores c; ECONFLICT if c.Hash exists, EINVALID if c.Hash or
// c.FamilyID is empty or c.ClientID or c.UserID names no client or user.
func (db *DB) CreateCode(ctx context.Context, c *latch.AuthCode) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	const op = "create code"
	if len(c.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: empty hash", op)
	}
	if c.FamilyID == "" {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: empty family id: a reused code could revoke nothing", op)
	}
	_, err := db.writer.ExecContext(ctx, `INSERT INTO auth_codes (`+codeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.UserID, c.SessionID, c.RedirectURI, listArg(c.Scope), listArg(c.Audience),
		c.Nonce, c.CodeChallenge, timeArg(c.AuthTime), c.FamilyID, timeArg(c.IssuedAt),
		timeArg(c.ExpiresAt), timeArg(c.UsedAt), c.DPoPJKT)
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "sqlite: %s: code exists", op)
	case isExtCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return latch.Errorf(latch.EINVALID, "sqlite: %s: client %q or user %q does not exist", op, c.ClientID, c.UserID)
	}
	return internal(op, err)
}

func scanCode(row interface{ Scan(...any) error }) (*latch.AuthCode, error) {
	var (
		c                                     latch.AuthCode
		scope, aud                            string
		authTime, issuedAt, expiresAt, usedAt sql.NullInt64
	)
	if err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.SessionID, &c.RedirectURI, &scope, &aud,
		&c.Nonce, &c.CodeChallenge, &authTime, &c.FamilyID, &issuedAt, &expiresAt, &usedAt, &c.DPoPJKT); err != nil {
		return nil, err
	}
	c.AuthTime, c.IssuedAt, c.ExpiresAt, c.UsedAt = timeOf(authTime), timeOf(issuedAt), timeOf(expiresAt), timeOf(usedAt)
	var err error
	if c.Scope, err = listOf(scope); err != nil {
		return nil, err
	}
	if c.Audience, err = listOf(aud); err != nil {
		return nil, err
	}
	return &c, nil
}

// Code returns the code with hash, used or not; ENOTFOUND if none.
func (db *DB) Code(ctx context.Context, hash []byte) (*latch.AuthCode, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	c, err := scanCode(db.reader.QueryRowContext(ctx, selectCode, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "sqlite: code not found")
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
	s, err := db.ready(ctx)
	if err != nil {
		return err
	}
	const op = "redeem code"
	if f == nil {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: no family", op)
	}
	var reused error
	err = db.batch(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		reused = nil
		c, err := scanCode(tx.StmtContext(ctx, s.redeemCode).QueryRowContext(ctx, hash))
		if errors.Is(err, sql.ErrNoRows) {
			return latch.Errorf(latch.ENOTFOUND, "sqlite: %s: code not found", op)
		}
		if err != nil {
			return internal(op, err)
		}
		switch latch.RedemptionOf(c, now, f.ID) {
		case latch.RedeemReuse:
			// The family may be gone already (purged, or revoked and its
			// client deleted): nothing is left to revoke then.
			if _, err := revokeFamiliesTx(ctx, tx, op, now, "id = ?", c.FamilyID); err != nil {
				return err
			}
			reused = latch.Reusedf("sqlite: %s: code used at %v is used again; family %s revoked",
				op, c.UsedAt, c.FamilyID)
			return nil
		case latch.RedeemExpired:
			return errUnauthorized(op, "code expired at %v", c.ExpiresAt)
		case latch.RedeemOtherFamily:
			return latch.Errorf(latch.EINVALID, "sqlite: %s: family %q is not the code's family %q", op, f.ID, c.FamilyID)
		}
		if _, err := tx.StmtContext(ctx, s.useCode).ExecContext(ctx, timeArg(now),
			timeArg(latch.UsedCodeExpiry(c, f)), hash); err != nil {
			return internal(op, err)
		}
		if err := createFamilyTx(ctx, tx, s, op, f); err != nil {
			return err
		}
		return writeIssue(ctx, tx, s, op, f.ID, issue)
	})
	if err != nil {
		return err
	}
	return reused
}

// CreateFamily stores f and writes issue in one transaction
// (latch.GrantStore): the password grant's family, which no code starts.
func (db *DB) CreateFamily(ctx context.Context, f *latch.Family, issue latch.Issue) error {
	s, err := db.ready(ctx)
	if err != nil {
		return err
	}
	const op = "create family"
	if f == nil {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: no family", op)
	}
	return db.batch(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		if err := createFamilyTx(ctx, tx, s, op, f); err != nil {
			return err
		}
		return writeIssue(ctx, tx, s, op, f.ID, issue)
	})
}

func createFamilyTx(ctx context.Context, tx *sql.Tx, s *statements, op string, f *latch.Family) error {
	if f.ID == "" {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: empty family id", op)
	}
	var session any
	if f.SessionID != "" {
		session = f.SessionID
	}
	_, err := tx.StmtContext(ctx, s.insertFamily).ExecContext(ctx, f.ID, f.ClientID, f.UserID, session,
		listArg(f.Scope), listArg(f.Audience), timeArg(f.AuthTime), timeArg(f.CreatedAt),
		timeArg(f.ExpiresAt), timeArg(f.RevokedAt))
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "sqlite: %s: family %q exists", op, f.ID)
	case isExtCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return latch.Errorf(latch.EINVALID, "sqlite: %s: client %q or user %q does not exist", op, f.ClientID, f.UserID)
	}
	return internal(op, err)
}

// writeIssue writes what a grant issued into family familyID, in tx.
// Opaque tokens must carry the family's ID, so that revoking the family
// finds them, and the refresh token must be of Kind refresh.
func writeIssue(ctx context.Context, tx *sql.Tx, s *statements, op, familyID string, issue latch.Issue) error {
	for _, t := range []struct {
		tok  *latch.Token
		kind latch.TokenKind
	}{{issue.Refresh, latch.KindRefresh}, {issue.Access, latch.KindAccess}} {
		if t.tok == nil {
			continue
		}
		if t.tok.Kind != t.kind || t.tok.FamilyID != familyID {
			return latch.Errorf(latch.EINVALID, "sqlite: %s: issued %s token %s is of kind %q and family %q, want %q and %q",
				op, t.kind, t.tok.ID, t.tok.Kind, t.tok.FamilyID, t.kind, familyID)
		}
		if err := execInsertToken(ctx, tx.StmtContext(ctx, s.createToken), op, t.tok); err != nil {
			return err
		}
	}
	if j := issue.JWT; j != nil {
		if j.Issuer == "" || j.JTI == "" {
			return latch.Errorf(latch.EINVALID, "sqlite: %s: issued JWT needs issuer and jti", op)
		}
		_, err := tx.StmtContext(ctx, s.insertFamilyJWT).ExecContext(ctx, familyID, j.Issuer, j.JTI, timeArg(j.ExpiresAt))
		if isUnique(err) {
			return latch.Errorf(latch.ECONFLICT, "sqlite: %s: JWT %s of %s exists", op, j.JTI, j.Issuer)
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
	scope, aud                                string
	authTime, createdAt, expiresAt, revokedAt sql.NullInt64
}

func (s *familyScan) dest() []any {
	return []any{&s.f.ID, &s.f.ClientID, &s.f.UserID, &s.f.SessionID, &s.scope, &s.aud,
		&s.authTime, &s.createdAt, &s.expiresAt, &s.revokedAt}
}

func (s *familyScan) family() (*latch.Family, error) {
	f := s.f
	f.AuthTime, f.CreatedAt, f.ExpiresAt, f.RevokedAt = timeOf(s.authTime), timeOf(s.createdAt),
		timeOf(s.expiresAt), timeOf(s.revokedAt)
	var err error
	if f.Scope, err = listOf(s.scope); err != nil {
		return nil, err
	}
	if f.Audience, err = listOf(s.aud); err != nil {
		return nil, err
	}
	return &f, nil
}

// tokenScan receives a tokens row as selectToken lists it.
type tokenScan struct {
	t                              latch.Token
	kind, scope, aud               string
	issuedAt, expiresAt, rotatedAt sql.NullInt64
}

func (s *tokenScan) dest() []any {
	return []any{&s.kind, &s.t.ID, &s.t.ClientID, &s.t.Subject, &s.scope, &s.aud, &s.t.FamilyID,
		&s.issuedAt, &s.expiresAt, &s.rotatedAt}
}

// destAll is dest with the columns selectToken adds: the client
// registration and the DPoP key.
func (s *tokenScan) destAll() []any {
	return append(s.dest(), &s.t.RegistrationID, &s.t.JKT)
}

func (s *tokenScan) token(hash []byte) (*latch.Token, error) {
	t := s.t
	t.Hash = append([]byte(nil), hash...)
	t.Kind = latch.TokenKind(s.kind)
	t.IssuedAt, t.ExpiresAt, t.RotatedAt = timeOf(s.issuedAt), timeOf(s.expiresAt), timeOf(s.rotatedAt)
	var err error
	if t.Scope, err = listOf(s.scope); err != nil {
		return nil, err
	}
	if t.Audience, err = listOf(s.aud); err != nil {
		return nil, err
	}
	return &t, nil
}

// Family returns the family with id, revoked or not; ENOTFOUND if none.
func (db *DB) Family(ctx context.Context, id string) (*latch.Family, error) {
	s, err := db.ready(ctx)
	if err != nil {
		return nil, err
	}
	var fs familyScan
	err = s.family.QueryRowContext(ctx, id).Scan(fs.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "sqlite: family %q not found", id)
	}
	if err != nil {
		return nil, internal("family", err)
	}
	f, err := fs.family()
	if err != nil {
		return nil, internal("family", err)
	}
	return f, nil
}

// RefreshChain returns the refresh token with hash, its family and its
// user, as latch.GrantStore documents, in one read.
func (db *DB) RefreshChain(ctx context.Context, hash []byte) (*latch.Token, *latch.Family, *latch.User, error) {
	s, err := db.ready(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	const op = "refresh chain"
	var (
		ts tokenScan
		fs familyScan
	)
	u, err := scanUser(prefixScan{s.refreshChain.QueryRowContext(ctx, hash), append(ts.destAll(), fs.dest()...)})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil, latch.Errorf(latch.ENOTFOUND, "sqlite: %s: refresh token not found", op)
	}
	if err != nil {
		return nil, nil, nil, internal(op, err)
	}
	t, err := ts.token(hash)
	if err != nil {
		return nil, nil, nil, internal(op, err)
	}
	f, err := fs.family()
	if err != nil {
		return nil, nil, nil, internal(op, err)
	}
	return t, f, u, nil
}

// prefixScan scans a row whose first columns go to pre and the rest to
// what Scan is given: a joined row read with another type's scan function.
type prefixScan struct {
	row interface{ Scan(...any) error }
	pre []any
}

func (p prefixScan) Scan(dest ...any) error { return p.row.Scan(append(p.pre, dest...)...) }

// RotateRefresh uses the refresh token with hash once, as latch.GrantStore
// documents, in one transaction of three to six statements. Besides the
// documented results, it returns the token and family with EUNAUTHORIZED and
// ErrReused too (for the caller's log; the family then has RevokedAt set),
// and EINVALID or ECONFLICT, writing nothing, if issue is not of the family
// or repeats a stored token.
func (db *DB) RotateRefresh(ctx context.Context, hash []byte, now time.Time, grace time.Duration, issue latch.Issue) (*latch.Token, *latch.Family, error) {
	s, err := db.ready(ctx)
	if err != nil {
		return nil, nil, err
	}
	const op = "rotate refresh"
	var (
		tok    *latch.Token
		fam    *latch.Family
		reused error
	)
	err = db.batch(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		tok, fam, reused = nil, nil, nil
		var (
			ts tokenScan
			fs familyScan
		)
		err := tx.StmtContext(ctx, s.selectRefresh).QueryRowContext(ctx, hash).Scan(append(ts.dest(), fs.dest()...)...)
		if errors.Is(err, sql.ErrNoRows) {
			return latch.Errorf(latch.ENOTFOUND, "sqlite: %s: refresh token not found", op)
		}
		if err != nil {
			return internal(op, err)
		}
		if tok, err = ts.token(hash); err != nil {
			return internal(op, err)
		}
		if fam, err = fs.family(); err != nil {
			return internal(op, err)
		}
		rot, refused := latch.RotationOf(tok, fam, now, grace)
		switch rot {
		case 0:
			return errUnauthorized(op, "%s", refused)
		case latch.RotateFirst:
			if _, err := tx.StmtContext(ctx, s.rotateToken).ExecContext(ctx, timeArg(now), hash); err != nil {
				return internal(op, err)
			}
			tok.RotatedAt = timeOf(sql.NullInt64{Int64: now.UnixMicro(), Valid: true})
		case latch.RotateRetry:
			// A concurrent duplicate or a retry: the same successor as
			// the first rotation, already stored.
			if issue.Refresh != nil {
				var stored bool
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tokens
					WHERE hash = ? AND kind = 'refresh' AND family_id = ?)`,
					issue.Refresh.Hash, fam.ID).Scan(&stored); err != nil {
					return internal(op, err)
				}
				if !stored {
					return errUnauthorized(op, "refresh token %s was rotated at %v into another successor than this retry's", tok.ID, tok.RotatedAt)
				}
				issue.Refresh = nil
			}
		case latch.RotateReuse:
			if _, err := revokeFamiliesTx(ctx, tx, op, now, "id = ?", fam.ID); err != nil {
				return err
			}
			fam.RevokedAt = timeOf(sql.NullInt64{Int64: now.UnixMicro(), Valid: true})
			reused = latch.Reusedf("sqlite: %s: refresh token %s rotated at %v is used again; family %s revoked",
				op, tok.ID, tok.RotatedAt, fam.ID)
			return nil
		}
		return writeIssue(ctx, tx, s, op, fam.ID, issue)
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
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	const op = "revoke family"
	return db.batch(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM families WHERE id = ?)`, id).Scan(&exists); err != nil {
			return internal(op, err)
		}
		if !exists {
			return latch.Errorf(latch.ENOTFOUND, "sqlite: %s: family %q not found", op, id)
		}
		_, err := revokeFamiliesTx(ctx, tx, op, now, "id = ?", id)
		return err
	})
}

// RevokeFamilies revokes every family of f.UserID or of f.SessionID that is
// not revoked yet, in one transaction, and returns how many; EINVALID unless
// exactly one field of f is set.
func (db *DB) RevokeFamilies(ctx context.Context, f latch.FamilyFilter, now time.Time) (int, error) {
	if _, err := db.ready(ctx); err != nil {
		return 0, err
	}
	const op = "revoke families"
	var cond, arg string
	switch {
	case f.UserID != "" && f.SessionID == "":
		cond, arg = "user_id = ?", f.UserID
	case f.SessionID != "" && f.UserID == "":
		cond, arg = "session_id = ?", f.SessionID
	default:
		return 0, latch.Errorf(latch.EINVALID, "sqlite: %s: set exactly one of UserID and SessionID", op)
	}
	var n int
	err := db.batch(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if n, err = revokeFamiliesTx(ctx, tx, op, now, cond, arg); err != nil {
			return err
		}
		// Codes not redeemed yet would start new families after the
		// sign-out or credential change: they go too (auth_codes has the
		// same user_id and session_id columns).
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_codes WHERE used_at IS NULL AND `+cond, arg); err != nil {
			return internal(op, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// revokeFamiliesTx revokes, in tx, the families that cond selects (a
// condition on families with one placeholder "?", for arg): it marks those
// not yet revoked revoked at now, and for all of them appends RevokeOpaque
// entries for their unexpired tokens and deletes the tokens, and appends
// RevokeJWT entries for their unexpired JWTs and forgets the JWTs. It
// returns how many families it marked. Five statements, however many
// families match.
func revokeFamiliesTx(ctx context.Context, tx *sql.Tx, op string, now time.Time, cond string, arg any) (int, error) {
	res, err := tx.ExecContext(ctx, `UPDATE families SET revoked_at = ?1
		WHERE revoked_at IS NULL AND `+cond, timeArg(now), arg)
	n, err := affected(res, err, op)
	if err != nil {
		return 0, err
	}
	inFamilies := `family_id IN (SELECT id FROM families WHERE ` + cond + `)`
	if err := appendOpaqueRevocations(ctx, tx, op, now, inFamilies, arg); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE `+inFamilies, arg); err != nil {
		return 0, internal(op, err)
	}
	if err := appendJWTRevocations(ctx, tx, op, now, inFamilies, arg); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM family_jwts WHERE `+inFamilies, arg); err != nil {
		return 0, internal(op, err)
	}
	return int(n), nil
}

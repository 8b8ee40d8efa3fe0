package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latch-auth/latch"
)

const clientColumns = `id, name, secret_hash, auth_method, jwks, grant_types, scopes,
	audiences, redirect_uris, access_token_format, access_token_ttl, refresh_token_ttl,
	created_at, updated_at, token_fingerprint, first_party, access_token_encryption_key,
	dpop, require_par, id_token_alg, web_origins, registration_id`

const selectClient = `SELECT ` + clientColumns + ` FROM clients WHERE id = ?`

// clientArgs are the values of clientColumns but the last,
// registration_id, which only CreateClient writes.
func clientArgs(c *latch.Client) []any {
	return []any{
		c.ID, c.Name, bytesArg(c.SecretHash), string(c.AuthMethod), bytesArg(c.JWKS),
		listArg(c.GrantTypes), listArg(c.Scopes), listArg(c.Audiences), listArg(c.RedirectURIs),
		string(c.AccessTokenFormat), int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL),
		timeArg(c.CreatedAt), timeArg(c.UpdatedAt), boolArg(c.TokenFingerprint),
		boolArg(c.FirstParty), bytesArg(c.AccessTokenEncryptionKey),
		string(c.DPoP), boolArg(c.RequirePAR), string(c.IDTokenAlgorithm), listArg(c.WebOrigins),
	}
}

// boolArg is a boolean as stored: INTEGER 0 or 1.
func boolArg(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func scanClient(row interface{ Scan(...any) error }) (*latch.Client, error) {
	var (
		c                               latch.Client
		authMethod, format, idTokenAlg  string
		grants, scopes, auds, redirects string
		webOrigins                      string
		accessTTL, refreshTTL           int64
		fingerprint, firstParty         int64
		dpopPolicy                      string
		requirePAR                      int64
		createdAt, updatedAt            sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &authMethod, &c.JWKS,
		&grants, &scopes, &auds, &redirects, &format, &accessTTL, &refreshTTL,
		&createdAt, &updatedAt, &fingerprint, &firstParty, &c.AccessTokenEncryptionKey,
		&dpopPolicy, &requirePAR, &idTokenAlg, &webOrigins, &c.RegistrationID); err != nil {
		return nil, err
	}
	c.SecretHash, c.JWKS = bytesOf(c.SecretHash), bytesOf(c.JWKS)
	c.AuthMethod, c.AccessTokenFormat = latch.AuthMethod(authMethod), latch.TokenFormat(format)
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(accessTTL), time.Duration(refreshTTL)
	c.CreatedAt, c.UpdatedAt = timeOf(createdAt), timeOf(updatedAt)
	c.TokenFingerprint, c.FirstParty = fingerprint != 0, firstParty != 0
	c.DPoP, c.RequirePAR = latch.DPoPPolicy(dpopPolicy), requirePAR != 0
	c.AccessTokenEncryptionKey = bytesOf(c.AccessTokenEncryptionKey)
	c.IDTokenAlgorithm = latch.Algorithm(idTokenAlg)
	var err error
	for _, l := range []struct {
		dst *[]string
		src string
	}{{&c.GrantTypes, grants}, {&c.Scopes, scopes}, {&c.Audiences, auds}, {&c.RedirectURIs, redirects}, {&c.WebOrigins, webOrigins}} {
		if *l.dst, err = listOf(l.src); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// CreateClient stores c; ECONFLICT if c.ID exists.
func (db *DB) CreateClient(ctx context.Context, c *latch.Client) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	_, err := db.writer.ExecContext(ctx,
		`INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append(clientArgs(c), c.RegistrationID)...)
	if isUnique(err) {
		return latch.Errorf(latch.ECONFLICT, "sqlite: create client: client %q exists", c.ID)
	}
	if err != nil {
		return internal("create client", err)
	}
	return nil
}

// Client returns the client with id; ENOTFOUND if none.
func (db *DB) Client(ctx context.Context, id string) (*latch.Client, error) {
	s, err := db.ready(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanClient(s.client.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "sqlite: client %q not found", id)
	}
	if err != nil {
		return nil, internal("client", err)
	}
	return c, nil
}

// Clients returns all clients ordered by ID.
func (db *DB) Clients(ctx context.Context) ([]*latch.Client, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, internal("clients", err)
	}
	defer rows.Close()
	var cs []*latch.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, internal("clients", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("clients", err)
	}
	return cs, nil
}

// UpdateClient replaces the stored client c.ID but its registration_id;
// ENOTFOUND if none.
func (db *DB) UpdateClient(ctx context.Context, c *latch.Client) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	args := clientArgs(c)
	res, err := db.writer.ExecContext(ctx, `UPDATE clients SET
		name = ?2, secret_hash = ?3, auth_method = ?4, jwks = ?5, grant_types = ?6,
		scopes = ?7, audiences = ?8, redirect_uris = ?9, access_token_format = ?10,
		access_token_ttl = ?11, refresh_token_ttl = ?12, created_at = ?13, updated_at = ?14,
		token_fingerprint = ?15, first_party = ?16, access_token_encryption_key = ?17,
		dpop = ?18, require_par = ?19, id_token_alg = ?20, web_origins = ?21
		WHERE id = ?1`, args...)
	return affectedOne(res, err, "update client", "client", c.ID)
}

// DeleteClient removes the client and, through ON DELETE CASCADE, its
// tokens, authorization codes and refresh families, in one transaction that
// first revokes its families (as RevokeFamily: their JWT access tokens are
// denylisted) and appends a RevokeOpaque entry to the revocation log for
// each of its tokens still unexpired, so caches in front of introspection
// (gateway, verify) learn that they are gone.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	now := time.Now()
	return db.withTx(ctx, "delete client", func(tx *sql.Tx) error {
		if _, err := revokeFamiliesTx(ctx, tx, "delete client", now, "client_id = ?", id); err != nil {
			return err
		}
		if err := appendOpaqueRevocations(ctx, tx, "delete client", now, "client_id = ?", id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
		return affectedOne(res, err, "delete client", "client", id)
	})
}

// affected returns how many rows the statement that answered res and err
// changed, or its error (or RowsAffected's) as op's internal error.
func affected(res sql.Result, err error, op string) (int64, error) {
	if err != nil {
		return 0, internal(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, internal(op, err)
	}
	return n, nil
}

// affectedOne turns the result of an UPDATE or DELETE by primary key into
// nil, ENOTFOUND, or an internal error.
func affectedOne(res sql.Result, err error, op, what, id string) error {
	n, err := affected(res, err, op)
	if err != nil {
		return err
	}
	if n == 0 {
		return latch.Errorf(latch.ENOTFOUND, "sqlite: %s: %s %q not found", op, what, id)
	}
	return nil
}

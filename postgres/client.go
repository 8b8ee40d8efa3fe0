package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

const clientColumns = `id, name, secret_hash, auth_method, jwks, grant_types, scopes,
	audiences, redirect_uris, access_token_format, access_token_ttl, refresh_token_ttl,
	created_at, updated_at, token_fingerprint, first_party, access_token_encryption_key,
	dpop, require_par, id_token_alg, web_origins, registration_id`

// clientArgs are the values of clientColumns but the last,
// registration_id, which only CreateClient writes.
func clientArgs(c *latch.Client) []any {
	return []any{
		c.ID, c.Name, bytesArg(c.SecretHash), string(c.AuthMethod), bytesArg(c.JWKS),
		listArg(c.GrantTypes), listArg(c.Scopes), listArg(c.Audiences), listArg(c.RedirectURIs),
		string(c.AccessTokenFormat), int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL),
		timeArg(c.CreatedAt), timeArg(c.UpdatedAt), c.TokenFingerprint,
		c.FirstParty, bytesArg(c.AccessTokenEncryptionKey),
		string(c.DPoP), c.RequirePAR, string(c.IDTokenAlgorithm), listArg(c.WebOrigins),
	}
}

func scanClient(row pgx.Row) (*latch.Client, error) {
	var (
		c                     latch.Client
		authMethod, format    string
		idTokenAlg            string
		accessTTL, refreshTTL int64
		createdAt, updatedAt  *time.Time
		dpopPolicy            string
	)
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &authMethod, &c.JWKS,
		&c.GrantTypes, &c.Scopes, &c.Audiences, &c.RedirectURIs, &format, &accessTTL, &refreshTTL,
		&createdAt, &updatedAt, &c.TokenFingerprint, &c.FirstParty, &c.AccessTokenEncryptionKey,
		&dpopPolicy, &c.RequirePAR, &idTokenAlg, &c.WebOrigins, &c.RegistrationID); err != nil {
		return nil, err
	}
	c.SecretHash, c.JWKS = bytesOf(c.SecretHash), bytesOf(c.JWKS)
	c.AuthMethod, c.AccessTokenFormat = latch.AuthMethod(authMethod), latch.TokenFormat(format)
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(accessTTL), time.Duration(refreshTTL)
	c.CreatedAt, c.UpdatedAt = timeOf(createdAt), timeOf(updatedAt)
	c.AccessTokenEncryptionKey = bytesOf(c.AccessTokenEncryptionKey)
	c.DPoP = latch.DPoPPolicy(dpopPolicy)
	c.IDTokenAlgorithm = latch.Algorithm(idTokenAlg)
	c.GrantTypes, c.Scopes = listOf(c.GrantTypes), listOf(c.Scopes)
	c.Audiences, c.RedirectURIs = listOf(c.Audiences), listOf(c.RedirectURIs)
	c.WebOrigins = listOf(c.WebOrigins)
	return &c, nil
}

// CreateClient stores c; ECONFLICT if c.ID exists.
func (db *DB) CreateClient(ctx context.Context, c *latch.Client) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		append(clientArgs(c), c.RegistrationID)...)
	if isUnique(err) {
		return latch.Errorf(latch.ECONFLICT, "postgres: create client: client %q exists", c.ID)
	}
	if err != nil {
		return internal("create client", err)
	}
	return nil
}

// Client returns the client with id; ENOTFOUND if none.
func (db *DB) Client(ctx context.Context, id string) (*latch.Client, error) {
	c, err := scanClient(db.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: client %q not found", id)
	}
	if err != nil {
		return nil, internal("client", err)
	}
	return c, nil
}

// Clients returns all clients ordered by ID (byte order, whatever the
// database's collation).
func (db *DB) Clients(ctx context.Context) ([]*latch.Client, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id COLLATE "C"`)
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
	tag, err := db.pool.Exec(ctx, `UPDATE clients SET
		name = $2, secret_hash = $3, auth_method = $4, jwks = $5, grant_types = $6,
		scopes = $7, audiences = $8, redirect_uris = $9, access_token_format = $10,
		access_token_ttl = $11, refresh_token_ttl = $12, created_at = $13, updated_at = $14,
		token_fingerprint = $15, first_party = $16, access_token_encryption_key = $17,
		dpop = $18, require_par = $19, id_token_alg = $20, web_origins = $21
		WHERE id = $1`, clientArgs(c)...)
	return affectedOne(tag, err, "update client", "client", c.ID)
}

// DeleteClient removes the client and, through ON DELETE CASCADE, its
// tokens, authorization codes and refresh families, in one transaction that
// first revokes its families (as RevokeFamily: their JWT access tokens are
// denylisted) and appends a RevokeOpaque entry to the revocation log for
// each of its tokens still unexpired, so caches in front of introspection
// (gateway, verify) learn that they are gone.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	now := time.Now()
	return db.withTx(ctx, "delete client", func(tx pgx.Tx) error {
		if err := lockParent(ctx, tx, "delete client", "clients", "client_id", id); err != nil {
			return err
		}
		if _, err := revokeFamiliesTx(ctx, tx, "delete client", now, "client_id = $2", id); err != nil {
			return err
		}
		if err := appendOpaqueRevocations(ctx, tx, "delete client", now, "client_id = $2", id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		return affectedOne(tag, err, "delete client", "client", id)
	})
}

package sqlite

import (
	"context"
	"database/sql"

	"github.com/latch-auth/latch"
)

const keyColumns = `id, algorithm, public, private, created_at, active_at, retired_at, removed_at, purpose`

func keyArgs(k *latch.Key) []any {
	return []any{k.ID, string(k.Algorithm), bytesArg(k.Public), bytesArg(k.Private),
		timeArg(k.CreatedAt), timeArg(k.ActiveAt), timeArg(k.RetiredAt), timeArg(k.RemovedAt), string(k.Purpose)}
}

// CreateKey stores k; ECONFLICT if k.ID exists.
func (db *DB) CreateKey(ctx context.Context, k *latch.Key) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	_, err := db.writer.ExecContext(ctx,
		`INSERT INTO keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, keyArgs(k)...)
	if isUnique(err) {
		return latch.Errorf(latch.ECONFLICT, "sqlite: create key: key %q exists", k.ID)
	}
	if err != nil {
		return internal("create key", err)
	}
	return nil
}

// Keys returns every stored key ordered by CreatedAt, oldest first (then by
// ID, so the order is total).
func (db *DB) Keys(ctx context.Context) ([]*latch.Key, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, internal("keys", err)
	}
	defer rows.Close()
	var ks []*latch.Key
	for rows.Next() {
		var (
			k                                       latch.Key
			alg, purpose                            string
			createdAt, activeAt, retiredAt, removed sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &alg, &k.Public, &k.Private, &createdAt, &activeAt, &retiredAt, &removed, &purpose); err != nil {
			return nil, internal("keys", err)
		}
		k.Algorithm, k.Purpose = latch.Algorithm(alg), latch.KeyPurpose(purpose)
		k.Public, k.Private = bytesOf(k.Public), bytesOf(k.Private)
		k.CreatedAt, k.ActiveAt = timeOf(createdAt), timeOf(activeAt)
		k.RetiredAt, k.RemovedAt = timeOf(retiredAt), timeOf(removed)
		ks = append(ks, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("keys", err)
	}
	return ks, nil
}

// UpdateKey replaces the stored key k.ID; ENOTFOUND if none.
func (db *DB) UpdateKey(ctx context.Context, k *latch.Key) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	res, err := db.writer.ExecContext(ctx, `UPDATE keys SET algorithm = ?2, public = ?3,
		private = ?4, created_at = ?5, active_at = ?6, retired_at = ?7, removed_at = ?8, purpose = ?9
		WHERE id = ?1`, keyArgs(k)...)
	return affectedOne(res, err, "update key", "key", k.ID)
}

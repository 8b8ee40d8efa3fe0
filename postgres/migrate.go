package postgres

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/sqlmigrate"
)

// Migrations are SQL files named NNNN_description.sql, applied in order of
// NNNN, each once, each in its own transaction together with its row in
// schema_migrations. Never edit a released migration: add the next one.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations is parsed once; a misnamed file is a build mistake that
// TestMigrations_Embedded catches.
var migrations = sqlmigrate.MustParse(migrationFiles, "postgres")

func latestVersion() int { return len(migrations) }

// migrationLock is the key of the transaction-scoped advisory lock every
// migration transaction takes first, so that processes starting at once
// apply each migration once, one after the other. The value is arbitrary
// but fixed: every latch version must use the same one.
const migrationLock = 0x6c61746368 // "latch"

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate brings the schema up to date: it applies every embedded
// migration newer than the database's version, each in its own transaction
// that holds the advisory lock and re-reads the version under it. It
// refuses a database whose schema is newer than this latch.
func (db *DB) migrate(ctx context.Context) error {
	for _, m := range migrations {
		op := "migrate " + m.Name
		err := db.withTx(ctx, op, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
				return internal(op, err)
			}
			// Under the lock: CREATE TABLE IF NOT EXISTS is not safe
			// against a concurrent one by itself.
			if _, err := tx.Exec(ctx, createSchemaMigrations); err != nil {
				return internal(op, err)
			}
			var v int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
				return internal(op, err)
			}
			switch {
			case v > latestVersion():
				return checkVersion(v)
			case v >= m.Version:
				return nil // applied already, perhaps by another process just now
			case v != m.Version-1:
				return latch.Errorf(latch.EINTERNAL, "postgres: %s: database is at version %d", op, v)
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return internal(op, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
				m.Version, m.Name); err != nil {
				return internal(op, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// A database that was already newer than this latch has no migration
	// left to run above; report it here.
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	return checkVersion(v)
}

func checkVersion(v int) error {
	latest := latestVersion()
	switch {
	case v < latest:
		return latch.Errorf(latch.EUNAVAILABLE,
			"postgres: database is at schema version %d, this latch needs %d: open it again to migrate", v, latest)
	case v > latest:
		return latch.Errorf(latch.EUNAVAILABLE,
			"postgres: database is at schema version %d, newer than this latch knows (%d): upgrade latch", v, latest)
	}
	return nil
}

// SchemaVersion returns the version of the newest migration applied to the
// database: 0 for a database no migration has run on.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, internal("schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, internal("schema version", err)
	}
	return v, nil
}

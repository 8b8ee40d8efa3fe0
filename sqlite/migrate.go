package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"time"

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
var migrations = sqlmigrate.MustParse(migrationFiles, "sqlite")

func latestVersion() int { return len(migrations) }

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

// Migrate brings the schema up to date: it applies every embedded migration
// newer than the database's version, each in its own IMMEDIATE transaction.
// It is idempotent, and safe when several processes run it at once: the
// write lock serializes them, and each re-reads the version under it.
// It refuses a database whose schema is newer than this latch.
func (db *DB) Migrate(ctx context.Context) error {
	if _, err := db.writer.ExecContext(ctx, createSchemaMigrations); err != nil {
		return internal("migrate", err)
	}
	for _, m := range migrations {
		err := db.withTx(ctx, "migrate "+m.Name, func(tx *sql.Tx) error {
			var v int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
				return internal("migrate "+m.Name, err)
			}
			if v > latestVersion() {
				return checkVersion(db.path, v)
			}
			if v >= m.Version {
				return nil // applied already, perhaps by another process just now
			}
			if v != m.Version-1 {
				return latch.Errorf(latch.EINTERNAL, "sqlite: migrate %s: database is at version %d", m.Name, v)
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return internal("migrate "+m.Name, err)
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UnixMicro()); err != nil {
				return internal("migrate "+m.Name, err)
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
	return checkVersion(db.path, v)
}

// SchemaVersion returns the version of the newest migration applied to the
// database: 0 for a database Migrate has never run on.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var n int
	if err := db.reader.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return 0, internal("schema version", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := db.reader.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, internal("schema version", err)
	}
	return v, nil
}

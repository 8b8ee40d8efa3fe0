package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latch-auth/latch"
)

// OpenReadOnly connects like Open but for reading only, for a command that
// must not change what it inspects (latch doctor): it applies no
// migration, and every transaction of its connections is READ ONLY
// (default_transaction_read_only), so PostgreSQL itself refuses a write.
// EUNAVAILABLE when the schema is not the one this latch knows.
func OpenReadOnly(ctx context.Context, url string) (*DB, error) {
	pool, err := connect(ctx, url, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		cfg.MaxConns = 2
	})
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if v != latestVersion() {
		pool.Close()
		return nil, latch.Errorf(latch.EUNAVAILABLE, "postgres: the schema is at version %d, this latch knows %d: run `latch migrate` (or upgrade latch)", v, latestVersion())
	}
	return db, nil
}

// ServerTime returns the database server's clock (now()), to compare with
// this host's: token lifetimes and key schedules assume they agree.
func (db *DB) ServerTime(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := db.pool.QueryRow(ctx, `SELECT now()`).Scan(&t); err != nil {
		return time.Time{}, internal("server time", err)
	}
	return t, nil
}

// ApplicationNames returns the distinct application_name of the sessions
// connected to this database whose name starts with prefix. latch serve
// names its connections after its node and issuer, so this
// lists the server nodes sharing the database.
func (db *DB) ApplicationNames(ctx context.Context, prefix string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND starts_with(application_name, $1) ORDER BY 1`, prefix)
	if err != nil {
		return nil, internal("application names", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, internal("application names", err)
		}
		names = append(names, strings.TrimSpace(n))
	}
	if err := rows.Err(); err != nil {
		return nil, internal("application names", err)
	}
	return names, nil
}

// Command seedtokens is a test-data tool: it fills a latch data directory's
// SQLite store with N live opaque access tokens, so that the load test can
// measure introspection against a large store. It writes some of the raw
// tokens it made to -sample-out, one a line, for `loadgen -token-file`.
//
// Two methods:
//
//	-method api  latch's store API (sqlite.DB.CreateToken) from -workers
//	             goroutines. Every token is a durable write
//	             (synchronous=FULL; the workers' concurrent writes share
//	             commits through the store's group commit): a few thousand a
//	             second, so a million takes far too long; -method api is here
//	             to measure that rate.
//	-method sql  database/sql straight into the tokens table of
//	             sqlite/migrations/0001_init.sql, -batch rows per transaction,
//	             synchronous=NORMAL. The rows are exactly what CreateToken
//	             writes (same columns and encodings: JSON lists, unix
//	             microseconds); the tool checks it by reading a sample back
//	             through sqlite.DB.Token.
//
// With -families N it also adds N refresh-token families of
// -family-client for the user -family-user, each with one live refresh
// token, straight into the families and tokens tables (as -method sql
// does): the store a busy deployment of refresh grants holds, for the
// load test's cost-of-a-large-store rows.
//
// The database must be migrated (run `latch serve --dev` or `latch migrate`
// first) and -client-id must exist: tokens reference their client. It is
// safe to run while a server uses the same directory (WAL, busy_timeout),
// but it is not a production tool: it bypasses the store's API.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/sqlite"
	"github.com/latch-auth/latch/token"
)

type options struct {
	dataDir  string
	n        int
	clientID string
	// registrationID is the client's, read from the store.
	registrationID string
	ttl            time.Duration
	scope          string
	audience       string
	method         string
	batch          int
	workers        int
	sample         int
	sampleOut      string
	families       int
	familyClient   string
	familyUser     string
}

func main() {
	var o options
	flag.StringVar(&o.dataDir, "data-dir", "./.latch", "latch data directory (holds latch.db)")
	flag.IntVar(&o.n, "n", 1_000_000, "tokens to insert")
	flag.StringVar(&o.clientID, "client-id", "", "client the tokens belong to (must exist)")
	flag.DurationVar(&o.ttl, "ttl", 24*time.Hour, "token lifetime from now")
	flag.StringVar(&o.scope, "scope", "read", "space-separated scope of every token")
	flag.StringVar(&o.audience, "audience", "api", "audience of every token")
	flag.StringVar(&o.method, "method", "sql", "sql (fast, direct inserts) or api (sqlite.DB.CreateToken)")
	flag.IntVar(&o.batch, "batch", 50_000, "sql: rows per transaction")
	flag.IntVar(&o.workers, "workers", 8, "api: concurrent CreateToken callers")
	flag.IntVar(&o.sample, "sample", 10_000, "raw tokens to write to -sample-out (spread over the run)")
	flag.StringVar(&o.sampleOut, "sample-out", "", "file for the sampled raw tokens (mode 0600)")
	flag.IntVar(&o.families, "families", 0, "refresh-token families to add, one live refresh token each")
	flag.StringVar(&o.familyClient, "family-client", "", "-families: the client of the families (must exist)")
	flag.StringVar(&o.familyUser, "family-user", "", "-families: the username the families belong to (must exist)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "seedtokens:", err)
		os.Exit(1)
	}
}

// row is one token as the tokens table holds it.
type row struct {
	hash []byte
	id   string
}

func run(ctx context.Context, o options) error {
	if o.n < 1 || o.n > 100_000_000 {
		return fmt.Errorf("-n %d: want 1..100000000", o.n)
	}
	if o.clientID == "" {
		return fmt.Errorf("-client-id is required")
	}
	if o.families < 0 || o.families > 100_000_000 || (o.families > 0 && (o.familyClient == "" || o.familyUser == "")) {
		return fmt.Errorf("-families %d: want 0..100000000, with -family-client and -family-user", o.families)
	}
	if o.batch < 1 || o.workers < 1 || o.sample < 0 || o.ttl <= 0 {
		return fmt.Errorf("-batch, -workers and -ttl must be positive, -sample not negative")
	}
	path := filepath.Join(o.dataDir, "latch.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %w (start `latch serve --dev --data-dir %s` once first)", path, err, o.dataDir)
	}
	// The store's own checks: the schema is current and the client exists.
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		return err
	}
	c, err := db.Client(ctx, o.clientID)
	if err != nil {
		return fmt.Errorf("client %q: %w", o.clientID, err)
	}
	// The tokens belong to the client's current registration, or the
	// server would take them for a deleted client's.
	o.registrationID = c.RegistrationID

	now := time.Now().Truncate(time.Second)
	exp := now.Add(o.ttl)
	scope := strings.Fields(o.scope)
	aud := []string{o.audience}
	every := max(1, o.n/max(1, o.sample))
	var sample []string
	var sampleMu sync.Mutex
	keep := func(i int, raw string) {
		if o.sample == 0 || i%every != 0 {
			return
		}
		sampleMu.Lock()
		if len(sample) < o.sample {
			sample = append(sample, raw)
		}
		sampleMu.Unlock()
	}
	newToken := func(i int) (string, row, error) {
		raw, err := token.NewOpaque(latch.KindAccess, nil)
		if err != nil {
			return "", row{}, err
		}
		id, err := token.NewID(nil)
		if err != nil {
			return "", row{}, err
		}
		keep(i, raw)
		return raw, row{hash: token.Hash(raw), id: id}, nil
	}

	start := time.Now()
	switch o.method {
	case "api":
		var next atomic.Int64
		var wg sync.WaitGroup
		errc := make(chan error, o.workers)
		for range o.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= o.n {
						return
					}
					_, r, err := newToken(i)
					if err == nil {
						err = db.CreateToken(ctx, &latch.Token{Hash: r.hash, Kind: latch.KindAccess, ID: r.id,
							ClientID: o.clientID, RegistrationID: o.registrationID, Subject: o.clientID, Scope: scope, Audience: aud, IssuedAt: now, ExpiresAt: exp})
					}
					if err != nil {
						errc <- err
						next.Store(int64(o.n))
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return err
		}
	case "sql":
		if err := insertSQL(ctx, path, o, now, exp, scope, aud, newToken); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-method %q: want sql or api", o.method)
	}
	elapsed := time.Since(start)

	// Read a sample back through the store's API: the rows must be what
	// CreateToken would have written.
	for _, raw := range sample[:min(len(sample), 100)] {
		t, err := db.Token(ctx, token.Hash(raw))
		if err != nil {
			return fmt.Errorf("read back a seeded token: %w", err)
		}
		if t.Kind != latch.KindAccess || t.ClientID != o.clientID || !slices.Equal(t.Scope, scope) ||
			!slices.Equal(t.Audience, aud) || !t.Active(time.Now()) || !t.ExpiresAt.Equal(exp) {
			return fmt.Errorf("seeded token reads back as %+v", t)
		}
	}
	if o.sampleOut != "" {
		var b bytes.Buffer
		for _, s := range sample {
			b.WriteString(s)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(o.sampleOut, b.Bytes(), 0o600); err != nil {
			return err
		}
	}
	if o.families > 0 {
		// Encodings of sqlite/encode.go: JSON lists.
		scopeJSON, _ := json.Marshal(scope)
		audJSON, _ := json.Marshal(aud)
		if err := seedFamilies(ctx, db, path, o, now, exp, scopeJSON, audJSON); err != nil {
			return err
		}
	}
	total, err := countTokens(ctx, path)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]any{
		"method": o.method, "rows": o.n, "families": o.families, "total_tokens": total, "seconds": elapsed.Seconds(),
		"rows_per_s": float64(o.n) / elapsed.Seconds(), "sample": len(sample), "sample_out": o.sampleOut,
	})
	fmt.Println(string(out))
	return nil
}

// seedFamilies adds o.families refresh-token families with one live
// refresh token each, in the rows the store's grants write (families and
// tokens of sqlite/migrations), and reads one back through the store.
func seedFamilies(ctx context.Context, db *sqlite.DB, path string, o options, now, exp time.Time, scopeJSON, audJSON []byte) error {
	c, err := db.Client(ctx, o.familyClient)
	if err != nil {
		return fmt.Errorf("-family-client %q: %w", o.familyClient, err)
	}
	u, err := db.UserByName(ctx, o.familyUser)
	if err != nil {
		return fmt.Errorf("-family-user %q: %w", o.familyUser, err)
	}
	w, err := openWriter(path)
	if err != nil {
		return err
	}
	defer w.Close()
	var last string
	// insert adds n families in one transaction.
	insert := func(n int) error {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() // after Commit, a no-op
		for range n {
			fam, err := token.NewID(nil)
			if err != nil {
				return err
			}
			id, err := token.NewID(nil)
			if err != nil {
				return err
			}
			raw, err := token.NewOpaque(latch.KindRefresh, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO families (id, client_id, user_id, scope, audience,
				auth_time, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				fam, c.ID, u.ID, string(scopeJSON), string(audJSON), now.UnixMicro(), now.UnixMicro(), exp.UnixMicro()); err != nil {
				return fmt.Errorf("insert family: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, id, client_id, subject, scope,
				audience, family_id, issued_at, expires_at, registration_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				token.Hash(raw), string(latch.KindRefresh), id, c.ID, u.ID, string(scopeJSON), string(audJSON), fam,
				now.UnixMicro(), exp.UnixMicro(), c.RegistrationID); err != nil {
				return fmt.Errorf("insert refresh token: %w", err)
			}
			last = raw
		}
		return tx.Commit()
	}
	for done := 0; done < o.families; {
		n := min(o.families-done, o.batch)
		if err := insert(n); err != nil {
			return err
		}
		done += n
		fmt.Fprintf(os.Stderr, "\rseedtokens: %d/%d families", done, o.families)
	}
	fmt.Fprintln(os.Stderr)
	if _, err := w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	t, err := db.Token(ctx, token.Hash(last))
	if err != nil {
		return fmt.Errorf("read back a seeded refresh token: %w", err)
	}
	if t.Kind != latch.KindRefresh || t.FamilyID == "" || t.ClientID != c.ID || !t.Active(time.Now()) {
		return fmt.Errorf("seeded refresh token reads back as %+v", t)
	}
	return nil
}

// countTokens returns the number of rows in the tokens table.
func countTokens(ctx context.Context, path string) (int64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_query_only", "1")
	r, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String())
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var n int64
	if err := r.QueryRowContext(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// insertSQL writes the rows of sqlite/migrations/0001_init.sql's tokens
// table directly, -batch per transaction, each batch sorted by hash so the
// primary-key b-tree is filled in order within it.
func insertSQL(ctx context.Context, path string, o options, now, exp time.Time, scope, aud []string,
	newToken func(int) (string, row, error)) error {
	w, err := openWriter(path)
	if err != nil {
		return err
	}
	defer w.Close()

	// Encodings of sqlite/encode.go: JSON lists, unix microseconds.
	scopeJSON, _ := json.Marshal(scope)
	audJSON, _ := json.Marshal(aud)
	issuedAt, expiresAt := now.UnixMicro(), exp.UnixMicro()

	rows := make([]row, 0, o.batch)
	for done := 0; done < o.n; {
		rows = rows[:0]
		for i := done; i < min(o.n, done+o.batch); i++ {
			_, r, err := newToken(i)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		slices.SortFunc(rows, func(a, b row) int { return bytes.Compare(a.hash, b.hash) })
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO tokens (hash, kind, id, client_id, subject, scope,
			audience, family_id, issued_at, expires_at, registration_id) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		for _, r := range rows {
			if _, err := st.ExecContext(ctx, r.hash, string(latch.KindAccess), r.id, o.clientID, o.clientID,
				string(scopeJSON), string(audJSON), issuedAt, expiresAt, o.registrationID); err != nil {
				tx.Rollback()
				return fmt.Errorf("insert: %w", err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
		done += len(rows)
		fmt.Fprintf(os.Stderr, "\rseedtokens: %d/%d", done, o.n)
	}
	fmt.Fprintln(os.Stderr)
	// Leave the WAL small for the server that opens the file next.
	if _, err := w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// openWriter opens path for the direct inserts: one connection,
// synchronous=NORMAL (test data, not acknowledged writes), foreign keys
// checked.
func openWriter(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "cache_size(-262144)") // 256 MiB of page cache for the index builds
	q.Set("_txlock", "immediate")
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String())
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	return w, nil
}

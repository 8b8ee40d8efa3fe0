package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

func queryPlan(tb testing.TB, db *DB, q string, args ...any) string {
	tb.Helper()
	rows, err := db.writer.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			tb.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// Session is on every request of a logged-in browser, UserByName on every
// login, and the deletes run on logout-everywhere and on every purge: none
// may scan a table.
func TestQueryPlans_UsersAndSessions_UseIndexes(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	now := time.Now().UnixMicro()
	for _, tc := range []struct {
		q    string
		args []any
		want []string
	}{
		{selectSession, []any{[]byte("h")}, []string{"USING PRIMARY KEY (id_hash=?)"}},
		{touchSession, []any{[]byte("h"), now, now}, []string{"USING PRIMARY KEY (id_hash=?)"}},
		{selectUser, []any{"u"}, []string{"USING INDEX sqlite_autoindex_users_1 (id=?)"}},
		{selectUserByName, []any{"alice"}, []string{"USING INDEX users_username_norm (username_norm=?)"}},
		{`DELETE FROM sessions WHERE user_id = ?`, []any{"u"}, []string{"USING INDEX sessions_user_id (user_id=?)"}},
		{`SELECT id_hash FROM sessions WHERE expires_at < ?1 OR expires_at IS NULL LIMIT ?2`, []any{now, 10},
			[]string{"sessions_expires_at (expires_at<?)", "sessions_expires_at (expires_at=?)"}},
		{`SELECT id_hash FROM sessions WHERE idle_expires_at < ?1 OR idle_expires_at IS NULL LIMIT ?2`, []any{now, 10},
			[]string{"sessions_idle_expires_at (idle_expires_at<?)", "sessions_idle_expires_at (idle_expires_at=?)"}},
	} {
		plan := queryPlan(t, db, tc.q, tc.args...)
		for _, want := range tc.want {
			if !strings.Contains(plan, want) {
				t.Errorf("plan of %q = %q, want %q", tc.q, plan, want)
			}
		}
	}
}

// A user's username_norm is computed by the store, never taken from the
// caller: it is what makes "Alice" and "alice" collide.
func TestCreateUser_StoresNormalizedUsername(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	if err := db.CreateUser(t.Context(), &latch.User{ID: "u1", Username: "Alice@Example.COM"}); err != nil {
		t.Fatal(err)
	}
	var name, norm string
	if err := db.reader.QueryRow(`SELECT username, username_norm FROM users WHERE id = 'u1'`).Scan(&name, &norm); err != nil {
		t.Fatal(err)
	}
	if name != "Alice@Example.COM" || norm != "alice@example.com" {
		t.Errorf("stored (username, username_norm) = (%q, %q)", name, norm)
	}
}

// seedSessions creates user "u" and n live sessions of it, keyed hashOf(i).
func seedSessions(b *testing.B, db *DB, n int) {
	b.Helper()
	ctx := context.Background()
	if err := db.CreateUser(ctx, &latch.User{ID: "u", Username: "u"}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := tx.Exec(insertSession, hashOf(i), "u", now.UnixMicro(), now.UnixMicro(),
			now.UnixMicro(), now.Add(time.Hour).UnixMicro(), now.Add(12*time.Hour).UnixMicro()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSession is the store cost of every request of a logged-in
// browser: one session among 100k.
func BenchmarkSession(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	const n = 100_000
	seedSessions(b, db, n)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := db.Session(ctx, hashOf(i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkSession_Parallel(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	const n = 100_000
	seedSessions(b, db, n)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.Session(ctx, hashOf(i%n)); err != nil {
				b.Error(err)
				return
			}
			i += 7919
		}
	})
}

// BenchmarkTouchSession is one synced write (synchronous=FULL, the
// default) and NORMAL beside it: the session layer should touch at most
// once a minute per session, not on every request.
func BenchmarkTouchSession(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run(fmt.Sprint("synchronous=", sync), func(b *testing.B) {
			db := mustOpenMigrated(b, options{synchronous: sync})
			const n = 10_000
			seedSessions(b, db, n)
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				seen := now.Add(time.Duration(i) * time.Microsecond)
				if err := db.TouchSession(ctx, hashOf(i%n), seen, seen.Add(30*time.Minute)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

package sqlite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// TestBackup_UnderWrites_RestoresEveryAcknowledgedToken: a backup taken
// while another connection keeps writing holds every token whose write
// returned before the backup started, and the restored copy opens,
// migrates and answers like the original.
func TestBackup_UnderWrites_RestoresEveryAcknowledgedToken(t *testing.T) {
	ctx := context.Background()
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	if err := db.CreateClient(ctx, &latch.Client{ID: "c", RegistrationID: "r", AuthMethod: latch.AuthSecretBasic,
		GrantTypes: []string{latch.GrantClientCredentials}, AccessTokenFormat: latch.FormatOpaque}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var acked atomic.Int64 // tokens 0..acked-1 are written
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.CreateToken(ctx, &latch.Token{Hash: hashOf(i), Kind: latch.KindAccess, ID: "t", ClientID: "c",
				RegistrationID: "r", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Errorf("CreateToken %d: %v", i, err)
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	for acked.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	before := acked.Load()
	to := filepath.Join(t.TempDir(), "backup.db")
	n, err := db.Backup(ctx, to)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup under writes: %v", err)
	}
	if fi, err := os.Stat(to); err != nil || fi.Size() != n || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, size %d (Backup said %d), mode %v; want mode 0600", err, fi.Size(), n, fi.Mode().Perm())
	}

	restored := filepath.Join(t.TempDir(), "fresh", "latch.db")
	if _, err := Restore(ctx, to, restored); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	rdb, err := Open(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Migrate(ctx); err != nil {
		t.Fatalf("Migrate of the restored copy: %v", err)
	}
	for i := range int(before) {
		if _, err := rdb.Token(ctx, hashOf(i)); err != nil {
			t.Fatalf("token %d, written before the backup started, is not in the restored copy: %v", i, err)
		}
	}
	t.Logf("%d tokens written before the backup, %d bytes", before, n)
}

func TestBackup_ExistingFile_IsRefusedAndKept(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	to := filepath.Join(t.TempDir(), "backup.db")
	for _, content := range [][]byte{[]byte("someone else's file"), {}} {
		if err := os.WriteFile(to, content, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := db.Backup(t.Context(), to)
		if latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("Backup over an existing file (%d bytes): err = %v, want ECONFLICT", len(content), err)
		}
		if got, _ := os.ReadFile(to); !bytes.Equal(got, content) {
			t.Fatalf("Backup changed the existing file: %q", got)
		}
	}
	if _, err := db.Backup(t.Context(), db.Path()); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("Backup onto the database itself: err = %v, want EINVALID", err)
	}
	if _, err := db.Backup(t.Context(), filepath.Join(t.TempDir(), "no", "such", "dir", "b.db")); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("Backup into a missing directory: err = %v, want EINVALID", err)
	}
}

func TestRestore_RefusesWhatIsNotAnIntactLatchBackup(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	good := filepath.Join(dir, "good.db")
	if _, err := db.Backup(ctx, good); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := filepath.Join(dir, "other.db")
	odb, err := Open(ctx, other) // a SQLite database without latch's schema
	if err != nil {
		t.Fatal(err)
	}
	odb.Close()
	for name, from := range map[string]string{
		"missing":   filepath.Join(dir, "nope.db"),
		"text":      write("text.db", []byte("not a database")),
		"truncated": write("truncated.db", raw[:len(raw)/2]),
		"not latch": other,
		"directory": dir,
	} {
		to := filepath.Join(t.TempDir(), "latch.db")
		if _, err := Restore(ctx, from, to); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("Restore of %s: err = %v, want EINVALID", name, err)
		}
		if _, err := os.Stat(to); err == nil {
			t.Errorf("Restore of %s left a database behind", name)
		}
	}

	// Never over an existing database, nor beside a stale -wal.
	for _, existing := range []string{"latch.db", "latch.db-wal"} {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, existing), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(ctx, good, filepath.Join(d, "latch.db")); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Errorf("Restore beside an existing %s: err = %v, want ECONFLICT", existing, err)
		}
	}
}

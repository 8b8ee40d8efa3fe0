package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/latch-auth/latch"
)

// TestOpenReadOnly_ReadsAndNeverWrites: a read-only DB reads what a
// writer stored, refuses to write, and leaves the file byte for byte; a
// missing file is ENOTFOUND and is not created.
func TestOpenReadOnly_ReadsAndNeverWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, &latch.Client{ID: "c1", AuthMethod: latch.AuthSecretBasic, GrantTypes: []string{latch.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)

	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ro.Clients(ctx)
	if err != nil || len(cs) != 1 || cs[0].ID != "c1" {
		t.Fatalf("Clients: %v %v", cs, err)
	}
	if mode, err := ro.JournalMode(ctx); err != nil || mode != "wal" {
		t.Fatalf("JournalMode: %q %v", mode, err)
	}
	if err := ro.CreateClient(ctx, &latch.Client{ID: "c2", AuthMethod: latch.AuthSecretBasic, GrantTypes: []string{latch.GrantClientCredentials}}); err == nil {
		t.Fatal("a read-only DB stored a client")
	}
	ro.Close()
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the file changed")
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("OpenReadOnly created %s", filepath.Base(path+suffix))
		}
	}

	missing := filepath.Join(t.TempDir(), "none", "latch.db")
	if _, err := OpenReadOnly(ctx, missing); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Fatal("OpenReadOnly created the directory")
	}
}

package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// TestOpenReadOnly: it refuses a schema that is not migrated (and does not
// migrate it), reads what Open stored, refuses writes, and reads the
// server's clock and the application names of the sessions connected.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	if _, err := OpenReadOnly(ctx, u); err == nil || !strings.Contains(err.Error(), "latch migrate") {
		t.Fatalf("empty schema: %v", err)
	}
	rw := mustOpen(t, u) // migrates
	if err := rw.CreateClient(ctx, &latch.Client{ID: "c1", AuthMethod: latch.AuthSecretBasic, GrantTypes: []string{latch.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(ctx, u+"&application_name=latch-ro-test/x")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	cs, err := ro.Clients(ctx)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Clients: %v %v", cs, err)
	}
	if err := ro.CreateClient(ctx, &latch.Client{ID: "c2", AuthMethod: latch.AuthSecretBasic, GrantTypes: []string{latch.GrantClientCredentials}}); err == nil {
		t.Fatal("a read-only DB stored a client")
	}
	now, err := ro.ServerTime(ctx)
	if err != nil || now.Sub(time.Now()).Abs() > time.Minute {
		t.Fatalf("ServerTime %v: %v", now, err)
	}
	names, err := ro.ApplicationNames(ctx, "latch-ro-test/")
	if err != nil || len(names) != 1 || names[0] != "latch-ro-test/x" {
		t.Fatalf("ApplicationNames: %v %v", names, err)
	}
}

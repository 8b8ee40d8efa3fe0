package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/verify"
)

// TestBackup_E2E_UnderLoad_RestoreServesTheSameTokens runs `latch backup`
// while the server issues tokens, restores the copy into a new data
// directory with `latch restore`, and serves it on the same issuer:
//   - every opaque token answered 200 before the backup started
//     introspects active, one revoked before the backup inactive, and one
//     issued after the backup finished is unknown (the price of a restore);
//   - a verify follower of the old server's revocation feed gets the
//     feed's reset, keeps refusing everything it had denylisted (also what
//     was revoked after the backup, which the restored log lacks), and
//     sees the restored server's new revocations.
func TestBackup_E2E_UnderLoad_RestoreServesTheSameTokens(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t) // the same issuer before and after the restore
	p := startLatch(t, dir, "--listen", addr)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	opq := createClient(t, dir, "--format", "opaque", "--audience", "api")

	var resets atomic.Int32
	ctx := context.Background()
	d, err := verify.FollowRevocations(ctx, verify.FeedConfig{
		Issuer: p.Issuer, ClientID: dev.ID, ClientSecret: dev.Secret, InsecureAllowHTTP: true,
		OnReset: func() { resets.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	v, err := verify.New(ctx, verify.Config{Issuer: p.Issuer, Audience: "dev-api", InsecureAllowHTTP: true, IsRevoked: d.IsRevoked})
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(p *latchProc, c testClient, tok string) {
		t.Helper()
		if code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), c, url.Values{"token": {tok}}); code != 200 {
			t.Fatalf("revoke: %d %s", code, body)
		}
	}
	jwtRevokedBefore := issueToken(t, p, dev, nil)
	opaqueRevokedBefore := issueToken(t, p, opq, nil)
	revoke(p, dev, jwtRevokedBefore)
	revoke(p, opq, opaqueRevokedBefore)
	waitRevoked(t, v, jwtRevokedBefore, 5*time.Second)

	// Load: opaque tokens issued back to back by four clients at once,
	// each recorded once its 200 arrived.
	var (
		mu     sync.Mutex
		issued []string
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := issueOpaque(hc, p, opq)
				if err != nil {
					t.Errorf("issue under load: %v", err)
					return
				}
				mu.Lock()
				issued = append(issued, tok)
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(issued)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), issued...)
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "latch-backup.db")
	out := runCLI(t, "backup", "--data-dir", dir, "--to", backup, "--json")
	close(stop)
	wg.Wait()
	var rec backupRecord
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.Bytes <= 0 || rec.To != backup {
		t.Fatalf("latch backup --json: %q: %v", out, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "backup.json")); err != nil || !strings.Contains(string(b), `"to":"`+backup+`"`) {
		t.Fatalf("backup.json after a backup: %s %v", b, err)
	}
	if _, errOut, code := runCLICode(t, nil, "backup", "--data-dir", dir, "--to", backup); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("a second backup to the same file: exit %d, %s; want 1 and a refusal", code, errOut)
	}

	// After the backup: what the restore will not know.
	jwtRevokedAfter := issueToken(t, p, dev, nil)
	revoke(p, dev, jwtRevokedAfter)
	waitRevoked(t, v, jwtRevokedAfter, 5*time.Second)
	opaqueIssuedAfter := issueToken(t, p, opq, nil)
	cursor := d.Cursor()
	p.Stop(t)

	fresh := filepath.Join(t.TempDir(), "restored")
	runCLI(t, "restore", "--from", backup, "--data-dir", fresh)
	// --dev keeps its key-encryption key in the data directory: the
	// restored one needs the same, or it could not open its signing keys.
	kek, err := os.ReadFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fresh, "kek"), kek, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startLatch(t, fresh, "--listen", addr)

	for i, tok := range before {
		if m := introspect(t, p, opq, tok); m["active"] != true {
			t.Fatalf("token %d of %d, answered 200 before the backup started, is %v after the restore", i, len(before), m)
		}
	}
	if m := introspect(t, p, opq, opaqueRevokedBefore); m["active"] != false {
		t.Errorf("a token revoked before the backup is active after the restore: %v", m)
	}
	if m := introspect(t, p, opq, opaqueIssuedAfter); m["active"] != false {
		t.Errorf("an opaque token issued after the backup is known to the restored server: %v", m)
	}

	deadline := time.Now().Add(15 * time.Second)
	for resets.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if resets.Load() == 0 {
		t.Fatalf("the follower (cursor %d) did not get the feed's reset from the restored server", cursor)
	}
	for name, tok := range map[string]string{"before": jwtRevokedBefore, "after": jwtRevokedAfter} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrRevoked) {
			t.Errorf("the follower forgot a JWT revoked %s the backup across the reset: %v", name, err)
		}
	}
	jwtRevokedRestored := issueToken(t, p, dev, nil)
	if _, err := v.Verify(ctx, jwtRevokedRestored); err != nil {
		t.Fatalf("a token of the restored server is refused: %v", err)
	}
	revoke(p, dev, jwtRevokedRestored)
	waitRevoked(t, v, jwtRevokedRestored, 10*time.Second)
	t.Logf("%d tokens issued before the backup and %d while it ran (%d bytes): the first all active after the restore; follower reset %d time(s)",
		len(before), len(issued)-len(before), rec.Bytes, resets.Load())
}

// issueOpaque is issueToken for a goroutine: it returns the error rather
// than failing the test.
func issueOpaque(hc *http.Client, p *latchProc, c testClient) (string, error) {
	code, body, err := postFormErr(hc, p.URL("/oauth2/token"), c, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		return "", err
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if code != 200 || json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token: %d %s", code, body)
	}
	return tr.AccessToken, nil
}

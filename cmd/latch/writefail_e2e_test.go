package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A write the store cannot commit is never acknowledged: while another
// process holds the SQLite write lock longer than the store waits for it
// (here the test itself, as a stuck CLI or a second server would), every
// client_credentials request that needs its opaque token stored gets 503
// temporarily_unavailable with Retry-After, each request of the failed
// batch alike; once the lock is released, issuance works again.
func TestWriteLockHeld_TokenRequestsAnswer503RetryAfter(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	c := createClient(t, dir, "--format", "opaque", "--audience", "api")
	hc := &http.Client{Timeout: 60 * time.Second}
	token := func() (int, http.Header, []byte) {
		req, _ := http.NewRequest(http.MethodPost, p.URL("/oauth2/token"),
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, c.Secret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("POST /oauth2/token: %v", err)
			return 0, nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, resp.Header, b
	}
	if code, _, body := token(); code != http.StatusOK {
		t.Fatalf("before the lock: %d %s", code, body)
	}

	ctx := context.Background()
	other, err := sql.Open("sqlite", filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}

	const n = 3
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			code, h, body := token()
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal(body, &e)
			if code != http.StatusServiceUnavailable || e.Error != "temporarily_unavailable" || h.Get("Retry-After") == "" {
				t.Errorf("request %d with the write lock held: %d, Retry-After %q, body %s; want 503 temporarily_unavailable with Retry-After",
					i, code, h.Get("Retry-After"), body)
			}
		})
	}
	wg.Wait()

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if code, _, body := token(); code != http.StatusOK {
		t.Fatalf("after the lock is released: %d %s", code, body)
	}
}

package server_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// TestRun_PurgesExpiredTokensAndDenylistEntries runs the background loop
// and checks that expired opaque tokens and denylist entries disappear from
// the store while live ones stay.
func TestRun_PurgesExpiredTokensAndDenylistEntries(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.PurgeInterval = 5 * time.Millisecond })
	oc, jc := e.opaqueClient(), e.jwtClient()
	expiring := e.token(oc, nil)
	revokedJWT := e.token(jc, nil)
	e.do("/oauth2/revoke", jc, url.Values{"token": {revokedJWT}})
	e.clock.Advance(11 * time.Minute) // past exp + leeway of both
	live := e.token(oc, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errTok := e.db.Token(ctx, token.Hash(expiring))
		log, err := e.db.RevocationsSince(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(errTok, latch.ErrNotFound) && len(log) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not purged after 5s: token err %v, %d log entries", errTok, len(log))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.db.Token(ctx, token.Hash(live)); err != nil {
		t.Fatalf("live token purged: %v", err)
	}
}

package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRevoke_JWTFromANodeWhoseClockRunsAhead: a JWT signed by a node whose
// clock is two minutes ahead is "not yet valid" here, and must still be
// denylisted when revoked here. Answering 200 without recording it would let
// it pass everywhere once the clocks agree.
func TestRevoke_JWTFromANodeWhoseClockRunsAhead(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	rs := e.resourceServer()
	e.clock.Advance(2 * time.Minute) // the node that signs runs ahead
	tok := e.token(c, nil)
	e.clock.Advance(-2 * time.Minute) // this node's clock
	if got := e.introspect(rs, tok); got != `{"active":false}` {
		t.Fatalf("a JWT from the future introspects %s, want inactive until its nbf", got)
	}
	if w := e.do("/oauth2/revoke", c, url.Values{"token": {tok}}); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	e.clock.Advance(2*time.Minute + time.Second) // the clocks agree: the token is valid by time
	if got := e.introspect(rs, tok); got != `{"active":false}` {
		t.Fatalf("the revoked JWT introspects %s once its nbf passed: the revocation was dropped", got)
	}
	// The same token never revoked is active then: the check above is
	// the revocation's doing, not the clock's.
	e.clock.Advance(2 * time.Minute)
	other := e.token(c, nil)
	e.clock.Advance(-2 * time.Minute)
	e.clock.Advance(2*time.Minute + time.Second)
	if got := e.introspect(rs, other); !strings.Contains(got, `"active":true`) {
		t.Fatalf("an unrevoked JWT from the future, once valid: %s", got)
	}
}

package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/internal/redistest"
	"github.com/latch-auth/latch/redis"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/throttle"
)

// throttleBackend is one implementation of the login throttle that the
// TestLogin_Throttle_ tests run against.
type throttleBackend struct {
	// config installs it; a no-op for the in-memory default.
	config func(*server.Config)
	// local: the counts are in the node's memory, where the
	// latch_login_backing_off gauge looks.
	local bool
}

// forEachThrottle runs fn on the in-memory throttle and, with
// LATCH_TEST_REDIS, on the Redis one (package redis) under a key prefix of
// the subtest's own.
func forEachThrottle(t *testing.T, fn func(t *testing.T, th throttleBackend)) {
	t.Run("memory", func(t *testing.T) {
		fn(t, throttleBackend{config: func(*server.Config) {}, local: true})
	})
	t.Run("redis", func(t *testing.T) {
		fn(t, throttleBackend{config: sharedThrottle(redistest.Client(t, nil))})
	})
}

// sharedThrottle installs c's login throttle, as cmd/latch does.
func sharedThrottle(c *redis.Client) func(*server.Config) {
	return func(cfg *server.Config) {
		cfg.SharedLoginThrottle = func(scope string, t throttle.Config) throttle.Throttle {
			return c.Throttle(cfg.Issuer, scope, t)
		}
	}
}

// TestLogin_SharedThrottle_CountsAcrossNodes: two servers sharing one
// Redis are one throttle: failures sent alternately to each put the
// account into back-off after Threshold failures in all, on both.
func TestLogin_SharedThrottle_CountsAcrossNodes(t *testing.T) {
	c := redistest.Client(t, nil)
	clk := latchtest.NewClock(time.Now().Truncate(time.Second))
	var nodes []*env
	for range 2 {
		e, _, _ := loginEnv(t, sharedThrottle(c), func(c *server.Config) {
			c.Now = clk.Now
			if len(nodes) > 0 {
				// Nodes share their store, so alice is one user (one ID,
				// which keys her back-off) on both.
				c.Store = nodes[0].db
			}
		})
		e.clock = clk
		nodes = append(nodes, e)
	}
	for i := range 5 {
		a := newAgent(nodes[i%2])
		a.remote = fmt.Sprintf("203.0.113.%d:1", i)
		if w := a.login("alice", "wrong password", ""); w.Code != http.StatusUnprocessableEntity {
			t.Fatalf("failure %d on node %d: %d, want 422", i+1, i%2, w.Code)
		}
	}
	for i, e := range nodes {
		if w := newAgent(e).login("alice", alicePassword, ""); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("node %d after 5 failures over both: %d Retry-After %q, want 429 and 1", i, w.Code, w.Header().Get("Retry-After"))
		}
	}
	clk.Advance(time.Second)
	if w := newAgent(nodes[1]).login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
		t.Fatalf("after the back-off: %d, want 303", w.Code)
	}
}

// downThrottle is a shared throttle whose backend is down while down is
// set: every call fails, as the Redis one does when Redis does not answer.
// Otherwise it answers "not blocked, no back-off".
type downThrottle struct {
	down  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("redis: login throttle: dial tcp 127.0.0.1:6379: connection refused")

func (f *downThrottle) err() error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return nil
}

func (f *downThrottle) Blocked(context.Context, [32]byte, time.Time) (time.Duration, error) {
	return 0, f.err()
}

func (f *downThrottle) Fail(context.Context, [32]byte, time.Time) (bool, error) {
	return false, f.err()
}

func (f *downThrottle) Reset(context.Context, [32]byte) error { return f.err() }

// TestLogin_SharedThrottleDown_FallsBackToMemory: when the shared throttle
// fails, logins are neither failed (no 5xx) nor let through unthrottled:
// the node's memory counts instead, each call it answers is counted in
// latch_login_throttle_fallbacks_total, the outage and its end are logged
// once, and after a failure the shared throttle is left alone for the
// retry interval (so a hung Redis does not cost every login a timeout).
func TestLogin_SharedThrottleDown_FallsBackToMemory(t *testing.T) {
	for _, tc := range []struct {
		name        string
		retry       time.Duration
		sharedCalls int64 // while down
	}{
		{"RetryEveryCall", 0, 17},
		{"RetryAfterAnHour", time.Hour, 2}, // the first call of each scope
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := &downThrottle{}
			shared.down.Store(true)
			e, _, _ := loginEnv(t, func(c *server.Config) {
				c.LoginAccountThrottle.Threshold = 3
				c.SharedLoginThrottle = func(string, throttle.Config) throttle.Throttle { return shared }
			})
			server.SetSharedThrottleRetry(e.srv, tc.retry)
			for i := range 3 {
				a := newAgent(e)
				a.remote = fmt.Sprintf("203.0.113.%d:1", i)
				if w := a.login("alice", "wrong password", ""); w.Code != http.StatusUnprocessableEntity {
					t.Fatalf("failure %d with the shared throttle down: %d, want 422\n%s", i+1, w.Code, w.Body)
				}
			}
			if w := newAgent(e).login("alice", alicePassword, ""); w.Code != http.StatusTooManyRequests {
				t.Fatalf("after 3 failures with the shared throttle down: %d, want 429 (the node's memory throttles)", w.Code)
			}
			e.clock.Advance(time.Second)
			if w := newAgent(e).login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
				t.Fatalf("after the back-off: %d, want 303", w.Code)
			}
			// 3 failures: 2 blocked + 2 fail calls each; the refused
			// login: 2 blocked; the success: 2 blocked + 1 reset.
			if got := shared.calls.Load(); got != tc.sharedCalls {
				t.Errorf("shared throttle called %d times, want %d", got, tc.sharedCalls)
			}
			acct := metric(t, e, `latch_login_throttle_fallbacks_total{scope="account"}`)
			addr := metric(t, e, `latch_login_throttle_fallbacks_total{scope="address"}`)
			if acct != 9 || addr != 8 {
				t.Errorf("fallbacks account %v, address %v; want 9 and 8: every call the memory answered", acct, addr)
			}
			logs := e.logs.String()
			if n := strings.Count(logs, "the shared state failed"); n != 2 { // once per scope
				t.Errorf("%d outage messages, want one per scope:\n%s", n, logs)
			}
			if strings.Contains(logs, "alice") {
				t.Errorf("the log names the account:\n%s", logs)
			}
			if tc.retry > 0 {
				return
			}
			// Back up: the next call uses it again, and says so once.
			shared.down.Store(false)
			newAgent(e).login("bob", "wrong password", "")
			newAgent(e).login("bob", "wrong password", "")
			if n := strings.Count(e.logs.String(), "the shared state works again"); n != 2 {
				t.Errorf("%d recovery messages, want one per scope:\n%s", n, e.logs)
			}
		})
	}
}

// fakeFanout records the server's use of a Fanout; publish, when set,
// runs inside Publish.
type fakeFanout struct {
	published  atomic.Int64
	publish    func(ctx context.Context) error
	subscribed chan func()
}

func (f *fakeFanout) Publish(ctx context.Context) error {
	f.published.Add(1)
	if f.publish != nil {
		return f.publish(ctx)
	}
	return nil
}

func (f *fakeFanout) Subscribe(ctx context.Context, notify func()) {
	f.subscribed <- notify
	<-ctx.Done()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
	}
}

// TestRevoke_Fanout_PublishesOffTheRequestPath: a revocation is answered
// 200 while the publish to the other nodes hangs, a failing publish is
// counted and logged once, and Run subscribes the feed to the other nodes.
func TestRevoke_Fanout_PublishesOffTheRequestPath(t *testing.T) {
	hang := make(chan struct{})
	fail := atomic.Bool{}
	f := &fakeFanout{subscribed: make(chan func(), 1)}
	f.publish = func(ctx context.Context) error {
		if fail.Load() {
			return errors.New("redis: publish a revocation on 127.0.0.1:6379: connection refused")
		}
		select {
		case <-hang:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e := newEnv(t, func(c *server.Config) { c.Fanout = f })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.srv.Run(ctx)
	select {
	case notify := <-f.subscribed:
		notify() // what a message from another node does: must not block
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not subscribe to the fan-out")
	}

	c := e.jwtClient()
	revoke := func() {
		t.Helper()
		if w := e.do("/oauth2/revoke", c, url.Values{"token": {e.token(c, nil)}}); w.Code != http.StatusOK {
			t.Fatalf("revoke: %d %s", w.Code, w.Body)
		}
	}
	revoke()
	eventually(t, "the first revocation is published", func() bool { return f.published.Load() == 1 })
	// The publisher hangs in Publish: more revocations are still answered
	// at once, and coalesce into one pending publish.
	for range 5 {
		revoke()
	}
	close(hang)
	eventually(t, "the pending revocations are published", func() bool { return f.published.Load() == 2 })

	fail.Store(true)
	for range 3 {
		revoke()
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "failed publishes are counted", func() bool {
		return metric(t, e, "latch_revocation_fanout_errors_total") >= 1
	})
	if n := strings.Count(e.logs.String(), "publishing failed"); n != 1 {
		t.Errorf("%d failure messages, want 1:\n%s", n, e.logs)
	}
	fail.Store(false)
	revoke()
	eventually(t, "recovery is logged", func() bool { return strings.Contains(e.logs.String(), "publishing works again") })
}

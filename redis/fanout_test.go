package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/internal/redistest"
	"github.com/latch-auth/latch/redis"
)

// waitFor is the generous bound of every "eventually" here: the events
// take a round trip to Redis, milliseconds, but the machine is shared.
const waitFor = 5 * time.Second

// subscribe runs f.Subscribe until the test ends and returns the channel
// its notify signals on; it waits for the first signal, which the
// subscription's confirmation sends.
func subscribe(t *testing.T, f *redis.Fanout) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	notified := make(chan struct{}, 100)
	go func() {
		defer close(done)
		f.Subscribe(ctx, func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Errorf("Subscribe did not return within %v of its context ending", waitFor)
		}
	})
	expect(t, notified, "the subscription's confirmation")
	return notified
}

func expect(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("no notification for %s within %v", what, waitFor)
	}
}

// drain empties ch, so that the next expect waits for a new notification.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestFanout_Publish_ReachesEveryNodeOfTheIssuer: a publish from one node
// notifies every node subscribed for the same issuer, itself included.
func TestFanout_Publish_ReachesEveryNodeOfTheIssuer(t *testing.T) {
	prefix := redistest.Prefix(t)
	const issuer = "https://auth.example.com"
	a := redistest.ClientWith(t, redis.Config{Prefix: prefix}).Fanout(issuer)
	b := redistest.ClientWith(t, redis.Config{Prefix: prefix}).Fanout(issuer)
	other := redistest.ClientWith(t, redis.Config{Prefix: prefix}).Fanout("https://other.example.com")
	if a.Channel() != b.Channel() || a.Channel() == other.Channel() {
		t.Fatalf("channels %q %q %q: want one per issuer", a.Channel(), b.Channel(), other.Channel())
	}
	if !strings.HasPrefix(a.Channel(), prefix+"revocations:") || strings.Contains(a.Channel(), "example") {
		t.Fatalf("channel %q: want %srevocations:<hex of SHA-256 of the issuer>", a.Channel(), prefix)
	}
	na, nb := subscribe(t, a), subscribe(t, b)
	for range 3 {
		drain(na)
		drain(nb)
		if err := a.Publish(context.Background()); err != nil {
			t.Fatal(err)
		}
		expect(t, nb, "a publish by the other node")
		expect(t, na, "a publish by this node")
	}
}

// syncLog is a slog handler's output that the test can read while the
// subscriber writes.
type syncLog = latchtest.LockedBuffer

// TestFanout_Subscribe_ReconnectsAndLogsOnce: when Redis drops the
// subscriber's connection, the subscriber logs the loss once, subscribes
// again by itself, logs that once, notifies (a hint may have been lost
// meanwhile), and receives publishes again.
func TestFanout_Subscribe_ReconnectsAndLogsOnce(t *testing.T) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "latch-test-" + hex.EncodeToString(b)
	logs := &syncLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	prefix := redistest.Prefix(t)
	url := redistest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	sub, err := redis.Open(context.Background(), redis.Config{URL: url + sep + "client_name=" + name, Prefix: prefix, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	pub := redistest.ClientWith(t, redis.Config{Prefix: prefix}).Fanout("https://auth.example.com")
	n := subscribe(t, sub.Fanout("https://auth.example.com"))

	// Drop the subscriber's connection (only it: it carries the name).
	r := raw(t)
	list, err := r.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		f := fields(line)
		if f["name"] == name && strings.Contains(f["flags"], "P") {
			if err := r.Do(context.Background(), "CLIENT", "KILL", "ID", f["id"]).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("found %d subscriber connections named %s, want 1:\n%s", killed, name, list)
	}
	expect(t, n, "the subscription coming back")
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(logs.String(), "subscribed again") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if strings.Count(out, "lost the subscription") != 1 || strings.Count(out, "subscribed again") != 1 {
		t.Fatalf("logs, want one loss and one recovery:\n%s", out)
	}
	drain(n)
	if err := pub.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, n, "a publish after the reconnection")
}

// fields parses one line of CLIENT LIST ("id=7 addr=... name=x ...").
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestFanout_RedisGone_PublishErrors_SubscribeKeepsTrying: with its client
// closed, Publish fails at once (the server counts it and moves on) and
// Subscribe keeps retrying quietly until its context ends.
func TestFanout_RedisGone_PublishErrors_SubscribeKeepsTrying(t *testing.T) {
	logs := &syncLog{}
	c := redistest.ClientWith(t, redis.Config{Prefix: redistest.Prefix(t), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f := c.Fanout("https://auth.example.com")
	c.Close()
	if err := f.Publish(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "redis: publish") {
		t.Fatalf("Publish on a closed client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	f.Subscribe(ctx, func() { t.Error("notified without a subscription") })
	if got := strings.Count(logs.String(), "lost the subscription"); got != 1 {
		t.Fatalf("%d loss messages over several retries, want 1:\n%s", got, logs)
	}
}

func TestOpen_BadURL_SaysWhatToWrite(t *testing.T) {
	for _, u := range []string{
		"", "127.0.0.1:6379", "http://127.0.0.1:6379", "postgres://x",
		"redis://user:s3cret@127.0.0.1:notaport", "redis://127.0.0.1:6379/notadb",
	} {
		_, err := redis.Open(context.Background(), redis.Config{URL: u})
		if err == nil {
			t.Errorf("%q: no error", u)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "redis: ") || !strings.Contains(msg, "redis://") {
			t.Errorf("%q: %v; want a message saying what a Redis URL looks like", u, err)
		}
		if strings.Contains(msg, "s3cret") {
			t.Errorf("%q: the error repeats the password: %v", u, err)
		}
	}
}

func TestOpen_Unreachable_NamesTheAddress(t *testing.T) {
	_, err := redis.Open(context.Background(), redis.Config{URL: "redis://:pw@127.0.0.1:1/0"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach 127.0.0.1:1") || strings.Contains(err.Error(), ":pw@") {
		t.Fatalf("Open on a closed port: %v", err)
	}
}

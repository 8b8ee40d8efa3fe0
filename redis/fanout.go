package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Fanout is the revocation fan-out of one issuer over Redis pub/sub; it
// implements server.Fanout. A message says only "the revocation log has
// grown": the subscribers read the entries from the store, so a lost
// message costs latency (until their next poll), never an entry.
type Fanout struct {
	c       *Client
	channel string
}

// fanoutMessage is the body of every message. Subscribers ignore it; it is
// there so that a person watching the channel sees what it is for.
const fanoutMessage = "revoked"

// Back-off between attempts to subscribe again after a failure.
const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 5 * time.Second
)

// Fanout returns the fan-out of issuer's revocations, on the channel
// PREFIX + "revocations:" + hex(SHA-256(issuer)).
func (c *Client) Fanout(issuer string) *Fanout {
	return &Fanout{c: c, channel: c.prefix + "revocations:" + issuerTag(issuer)}
}

// Channel is the pub/sub channel's name.
func (f *Fanout) Channel() string { return f.channel }

// Publish implements server.Fanout: one PUBLISH, bounded by ctx.
func (f *Fanout) Publish(ctx context.Context) error {
	if err := f.c.rdb.Publish(ctx, f.channel, fanoutMessage).Err(); err != nil {
		return fmt.Errorf("redis: publish a revocation on %s: %w", f.c.addr, err)
	}
	return nil
}

// Subscribe implements server.Fanout: it calls notify for every message
// on the channel, and once more whenever it (re)subscribes, since a
// message may have been missed meanwhile. It logs once when the
// subscription is lost and once when it is back, and retries with a
// back-off from 100 ms to 5 s in between. It returns when ctx ends.
func (f *Fanout) Subscribe(ctx context.Context, notify func()) {
	wait := resubscribeMin
	lost, first := false, true
	for ctx.Err() == nil {
		subscribed, err := f.listen(ctx, notify, func() {
			switch {
			case first:
				f.c.log.Debug("revocation fan-out: subscribed", "channel", f.channel, "redis", f.c.addr)
			case lost:
				f.c.log.Info("revocation fan-out: subscribed again", "channel", f.channel, "redis", f.c.addr)
			}
			first, lost = false, false
		})
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			wait = resubscribeMin
		}
		if !lost {
			f.c.log.Warn("revocation fan-out: lost the subscription; this node learns of other nodes' revocations at its next poll of the store (100 ms) until it is back",
				"channel", f.channel, "redis", f.c.addr, "err", err)
			lost = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, resubscribeMax)
	}
}

// listen subscribes on a connection of its own and calls notify for each
// message until the connection fails or ctx ends. onSubscribed is called
// when Redis confirms the subscription. A connection silent for the
// health-check interval is pinged; one that then stays silent as long
// again is taken for dead (a peer that vanished without closing it).
func (f *Fanout) listen(ctx context.Context, notify, onSubscribed func()) (subscribed bool, err error) {
	ps := f.c.rdb.Subscribe(ctx, f.channel)
	defer ps.Close()
	// A blocked read does not watch ctx; closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, f.c.health)
		switch {
		case ctx.Err() != nil:
			return subscribed, ctx.Err()
		case err != nil && isTimeout(err) && !pinged:
			if err := ps.Ping(ctx); err != nil {
				return subscribed, err
			}
			pinged = true
			continue
		case err != nil && isTimeout(err):
			return subscribed, fmt.Errorf("redis: no answer to a ping within %v", f.c.health)
		case err != nil:
			return subscribed, err
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" && m.Channel == f.channel {
				subscribed = true
				onSubscribed()
				notify()
			}
		case *goredis.Message:
			notify()
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

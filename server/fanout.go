package server

import (
	"context"
	"time"
)

// Fanout carries one hint between the latch serve nodes that share a
// store: "the revocation log has grown". Each node's feed then reads the
// log at once instead of at its next poll (revfeed.PollInterval), so a
// follower of any node learns of a revocation made on another within a
// round trip. Package redis implements it with pub/sub.
//
// It carries no entries: they are always read from the store, so a lost
// message costs only latency, and the feed's polling stays the safety net.
type Fanout interface {
	// Publish tells every subscribed node, this one included, that the
	// revocation log has grown. It is called after the store acknowledged
	// the append, off the request path, under a short deadline.
	Publish(ctx context.Context) error
	// Subscribe calls notify for each Publish of any node until ctx ends,
	// then returns. It reconnects by itself after a failure. notify does
	// not block.
	Subscribe(ctx context.Context, notify func())
}

// fanoutPublishTimeout bounds one Publish. Publishing runs in its own
// goroutine, so this never delays a revocation request; it only keeps a
// hung Redis from holding the publisher (and the hints queued behind it)
// for longer than the feed's polling would take anyway, many times over.
const fanoutPublishTimeout = time.Second

// revoked is called after this server appended to the revocation log: it
// wakes this node's feed and, with a Fanout, every other node's.
func (s *Server) revoked() {
	s.feed.Notify()
	if s.cfg.Fanout == nil {
		return
	}
	// Capacity 1: a pending publish covers every append made before the
	// publisher takes it, so hints coalesce instead of queueing.
	select {
	case s.publish <- struct{}{}:
	default:
	}
}

// runFanout subscribes this node's feed to the other nodes' hints and
// publishes this node's, until ctx ends. Started by Run with a Fanout.
func (s *Server) runFanout(ctx context.Context) {
	go s.cfg.Fanout.Subscribe(ctx, s.feed.Notify)
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.publish:
		}
		pctx, cancel := context.WithTimeout(ctx, fanoutPublishTimeout)
		err := s.cfg.Fanout.Publish(pctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			s.metrics.fanoutErrors.Inc()
			if !failing {
				// Once per outage: a log line per revocation would drown
				// the one that says it is over.
				s.log.Warn("revocation fan-out: publishing failed; other nodes learn of this node's revocations at their next poll of the store (100 ms) until it works again", "err", err)
				failing = true
			}
		case failing:
			s.log.Info("revocation fan-out: publishing works again")
			failing = false
		}
	}
}

package server

import (
	"context"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/revfeed"
)

// RevocationsAt counts the revocation-log entries stamped exactly at (the
// stores keep microseconds): the opaque tokens (refresh and access) deleted
// and the JWT access tokens denylisted by revocations run with that time,
// such as a sign-out everywhere through Users with Now fixed to it. It
// reads the whole log, which holds only entries not yet expired: for the
// CLI's report, not for a request path.
func RevocationsAt(ctx context.Context, st latch.RevocationStore, at time.Time) (opaque, jwts int, err error) {
	at = at.Truncate(time.Microsecond)
	var after int64
	for {
		page, err := st.RevocationsSince(ctx, after, revfeed.PageLimit)
		if err != nil {
			return 0, 0, err
		}
		for _, r := range page {
			if !r.RevokedAt.Equal(at) {
				continue
			}
			switch r.Kind {
			case latch.RevokeOpaque:
				opaque++
			case latch.RevokeJWT:
				jwts++
			}
		}
		if len(page) < revfeed.PageLimit {
			return opaque, jwts, nil
		}
		after = page[len(page)-1].Seq
	}
}

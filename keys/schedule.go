package keys

import (
	"cmp"
	"slices"
	"time"

	"github.com/latch-auth/latch"
)

// State is where a key is in its life, as `latch keys list` shows it.
type State string

const (
	StatePending    State = "pending"    // published, not yet signing
	StateActive     State = "active"     // signing
	StateSuperseded State = "superseded" // a newer key signs; published for verification only
	StateRetired    State = "retired"    // retired by the operator; published for verification only
	StateRemoved    State = "removed"    // dropped from the JWKS at once (retire --now)
	StateExpired    State = "expired"    // left the JWKS after the last token it signed expired
)

// timeline is what the stored timestamps of one key imply, given the others.
//
// Each line of keys (latch.Key.Purpose) is planned on its own: the signer
// of a line at any instant is its key with the latest ActiveAt (ties by
// CreatedAt, then ID) among those that have reached their ActiveAt without
// being retired or removed first. A key so superseded never signs again, even
// if its successor is later retired: by then its end of publication has been
// announced (and may have passed), so letting it resume would mint tokens
// that verifiers can no longer check.
type timeline struct {
	key *latch.Key
	// stop is when the key stops signing: the earliest of RetiredAt,
	// RemovedAt and the ActiveAt of the key that supersedes it. Zero while
	// nothing has ended it yet.
	stop time.Time
	// publishedUntil is when the key leaves the JWKS: RemovedAt, else stop +
	// MaxTokenTTL + Leeway. Zero while open-ended.
	publishedUntil time.Time
}

// endsBefore reports whether k was retired or removed before t. A key
// retired at the very instant of its ActiveAt still supersedes its
// predecessor: it may have signed at that instant in another process.
func endsBefore(k *latch.Key, t time.Time) bool {
	return (!k.RetiredAt.IsZero() && k.RetiredAt.Before(t)) ||
		(!k.RemovedAt.IsZero() && k.RemovedAt.Before(t))
}

// earliest returns the earliest non-zero time of ts, or zero.
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// plan computes the timeline of every key, in the order of keys. grace is
// MaxTokenTTL + Leeway.
func plan(keys []*latch.Key, grace time.Duration) []timeline {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ka, kb := keys[a], keys[b]
		return cmp.Or(ka.ActiveAt.Compare(kb.ActiveAt), ka.CreatedAt.Compare(kb.CreatedAt), cmp.Compare(ka.ID, kb.ID))
	})
	tl := make([]timeline, len(keys))
	for p, i := range order {
		k := keys[i]
		var supersededAt time.Time
		for _, j := range order[p+1:] {
			if next := keys[j]; next.Purpose == k.Purpose && !endsBefore(next, next.ActiveAt) {
				supersededAt = next.ActiveAt
				break
			}
		}
		t := timeline{key: k, stop: earliest(k.RetiredAt, k.RemovedAt, supersededAt)}
		var graceEnd time.Time
		if !t.stop.IsZero() {
			graceEnd = t.stop.Add(grace)
		}
		t.publishedUntil = earliest(k.RemovedAt, graceEnd)
		tl[i] = t
	}
	return tl
}

// signsAt reports whether the key is the signer at now.
func (t *timeline) signsAt(now time.Time) bool {
	return !now.Before(t.key.ActiveAt) && (t.stop.IsZero() || now.Before(t.stop))
}

// pendingAt reports whether the key has not signed yet at now but will.
func (t *timeline) pendingAt(now time.Time) bool {
	return now.Before(t.key.ActiveAt) && (t.stop.IsZero() || t.stop.After(t.key.ActiveAt))
}

// inLineAt reports whether the key signs at now or will later.
func (t *timeline) inLineAt(now time.Time) bool { return t.signsAt(now) || t.pendingAt(now) }

// publishedAt reports whether the key is in the JWKS at now. A key is
// published as soon as it is stored, whatever its CreatedAt says, so that
// clock skew between the CLI and the server never delays publication.
func (t *timeline) publishedAt(now time.Time) bool {
	return t.publishedUntil.IsZero() || now.Before(t.publishedUntil)
}

func (t *timeline) stateAt(now time.Time) State {
	k := t.key
	switch {
	case !k.RemovedAt.IsZero() && !now.Before(k.RemovedAt):
		return StateRemoved
	case !t.publishedAt(now):
		return StateExpired
	case t.signsAt(now):
		return StateActive
	case t.pendingAt(now):
		return StatePending
	case !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt):
		return StateRetired
	default:
		return StateSuperseded
	}
}

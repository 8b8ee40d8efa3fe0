package latch

import (
	"context"
	"time"
)

// PushedRequest is an authorization request a client pushed to the
// pushed authorization request endpoint (RFC 9126 §2), stored by the
// SHA-256 of the request_uri that stands for it until /oauth2/authorize
// uses it. Like the other credentials, the request_uri itself is never
// stored.
type PushedRequest struct {
	Hash     []byte // SHA-256 of the request_uri; the primary key
	ClientID string
	// Params are the authorization request's parameters, form-encoded
	// (RFC 6749 §4.1.1), as checked when they were pushed: client
	// authentication removed, dpop_jkt set from a DPoP proof (RFC 9449
	// §10.1).
	Params    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PushedRequestStore keeps pushed authorization requests (RFC 9126).
//
// A request_uri is single-use (RFC 9126 §4): it may be read as often as a
// browser reloads the authorization page while its user signs in, and is
// used up by UsePushedRequest when a code is issued from it.
type PushedRequestStore interface {
	// CreatePushedRequest stores p; ECONFLICT if p.Hash exists.
	CreatePushedRequest(ctx context.Context, p *PushedRequest) error
	// PushedRequest returns the request with hash, expired or not;
	// ENOTFOUND if none (never pushed, used, or purged).
	PushedRequest(ctx context.Context, hash []byte) (*PushedRequest, error)
	// UsePushedRequest deletes the request with hash if it is not expired
	// at now. ENOTFOUND if there is none (used already: of concurrent
	// calls exactly one succeeds), EUNAUTHORIZED if it expired.
	UsePushedRequest(ctx context.Context, hash []byte, now time.Time) error
}

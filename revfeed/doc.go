// Package revfeed is the broadcaster of latch's revocation feed: one
// goroutine per server that reads the revocation log (every PollInterval,
// and at once when told of a revocation), keeps its recent entries in
// memory for the followers waiting on them, keeps a Follower (the token
// cache) in step with what it read, and counts each client's connections.
//
// The endpoint that answers GET /oauth2/revocations, its wire format and
// its long-poll and stream limits are the server's. It may import only the
// root package.
package revfeed

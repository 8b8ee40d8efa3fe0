package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
)

// A latch serve on PostgreSQL names its connections (application_name,
// visible in pg_stat_activity) "latch-serve/TAG/HOST:PID", TAG standing
// for its issuer: latch doctor counts the nodes of one deployment sharing
// a database from them, since no table records the nodes.
const nodeNamePrefix = "latch-serve/"

// nodeNameTag is the prefix of the application names of issuer's nodes.
func nodeNameTag(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return nodeNamePrefix + hex.EncodeToString(sum[:4]) + "/"
}

// withNodeName returns the PostgreSQL URL with application_name naming
// this node, unless the operator set one (theirs wins; doctor then cannot
// count the nodes).
func withNodeName(dbURL, issuer string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	if q.Get("application_name") != "" {
		return dbURL
	}
	host, _ := os.Hostname()
	name := nodeNameTag(issuer) + host + ":" + strconv.Itoa(os.Getpid())
	// PostgreSQL truncates names to 63 bytes (NAMEDATALEN - 1).
	if len(name) > 63 {
		name = name[:63]
	}
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

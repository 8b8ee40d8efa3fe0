// Package doctor finds the known pitfalls of a latch deployment in a
// snapshot of its configuration, its stored clients and keys, and
// optionally what a running server answers. It only judges: gathering the
// snapshot (without writing anything) is the command's job, so every
// check is a pure function a test can feed.
//
// Each Finding names what was seen, why it matters in one sentence with
// its source (an OWASP cheat sheet, RFC 9700, RFC 8725, NIST SP 800-63B),
// and the command or flag that fixes it. Severities map to an exit
// status (Code) so that a CI job can gate a deployment on it.
package doctor

import (
	"net/netip"
	"slices"
	"time"

	"github.com/latch-auth/latch"
)

// Severity is how much a finding matters.
type Severity string

const (
	// High: an exploitable weakness; Code is 2.
	High Severity = "high"
	// Warning: a weaker setting than the sources advise; Code is 1.
	Warning Severity = "warning"
	// Info: worth knowing, nothing to fix (what --dev implies, for
	// one); it does not change Code.
	Info Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case High:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// Finding is one pitfall found.
type Finding struct {
	// ID is stable: scripts and suppressions may rely on it.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Subject is what was looked at: "client spa", "--access-token-ttl".
	Subject string `json:"subject"`
	// Seen is the value found there.
	Seen   string `json:"seen"`
	Why    string `json:"why"`
	Source string `json:"source"`
	Fix    string `json:"fix"`
}

// Code is the exit status for findings: 2 with a high finding, 1 with a
// warning, else 0.
func Code(fs []Finding) int {
	c := 0
	for _, f := range fs {
		c = max(c, f.Severity.rank())
	}
	return c
}

// Snapshot is what the checks look at. A zero field is "not known" where
// its comment says so; the checks that need it then say nothing.
type Snapshot struct {
	Now time.Time

	// The serve configuration, as flags, environment and config file
	// give it to latch serve.
	Dev               bool
	Issuer            string
	InsecureAllowHTTP bool
	AccessTokenTTL    time.Duration
	MaxAccessTokenTTL time.Duration
	RefreshTokenTTL   time.Duration
	FamilyMaxAge      time.Duration
	// RefreshGrace is --refresh-grace; 0 is none.
	RefreshGrace   time.Duration
	PrePublish     time.Duration
	MinPasswordLen int
	// Blocklist is the --breached-passwords file; empty when off.
	Blocklist      string
	RedisURL       bool
	TrustedProxies []netip.Prefix
	DataDir        string
	PostgreSQL     bool
	KEK            KEK

	// Thresholds of the checks that are a matter of policy.
	// KeyMaxAge is how long one key may sign before the operator rotates it.
	KeyMaxAge time.Duration
	// JWKSCacheTime is the longest a resource server keeps a JWKS.
	JWKSCacheTime time.Duration

	// The store.
	Clients []*latch.Client
	Keys    []*latch.Key
	Users   int
	// DBTime is the database's clock read at Now; zero when not known
	// (SQLite shares the host's clock).
	DBTime time.Time
	// Nodes are the server nodes seen using the store; nil when the
	// store cannot tell (SQLite: serve.lock allows one per file).
	Nodes  []string
	SQLite *SQLiteFile

	// Backup is the last backup recorded in DATA_DIR/backup.json; nil
	// when none was.
	Backup *Backup

	// Probe is what a running server answered; nil without --url.
	Probe *Probe
}

// KEK is where the key-encryption key comes from.
type KEK struct {
	// FromEnv: LATCH_KEK holds the key itself; no file to check.
	FromEnv bool
	// Path of the file, Mode its permission bits; empty Path when no key
	// was found.
	Path string
	Mode uint32
}

// SQLiteFile describes the SQLite database file.
type SQLiteFile struct {
	Path        string
	JournalMode string
	// FSType names the filesystem holding the file; Network is true for
	// NFS, SMB/CIFS and the other filesystems SQLite's locking does not
	// work on.
	FSType  string
	Network bool
}

// Backup is the record `latch backup --to FILE` leaves in
// DATA_DIR/backup.json.
type Backup struct {
	At    time.Time `json:"at"`
	To    string    `json:"to"`
	Bytes int64     `json:"bytes"`
}

// Probe is what a running server answered at --url.
type Probe struct {
	URL string
	// DiscoveryErr says why the metadata (RFC 8414) could not be read;
	// empty on success, when Issuer is the one it advertises.
	DiscoveryErr string
	Issuer       string
	// MetricsStatus is the HTTP status of GET /metrics; 0 when the
	// request failed.
	MetricsStatus int
}

// Check runs every check over s and returns the findings, the most
// severe first, in the checks' order within a severity.
func Check(s *Snapshot) []Finding {
	var out []Finding
	for _, c := range Checks {
		out = append(out, c.Run(s)...)
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return b.Severity.rank() - a.Severity.rank() })
	return out
}

// A CheckDef is one check: its finding IDs and what it looks at.
type CheckDef struct {
	Name string
	IDs  []string
	Run  func(*Snapshot) []Finding
}

package doctor

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/latch-auth/latch"
)

// Thresholds of the checks. Each is the value the cited source gives, or
// where a source gives none, latch's own default and why.
const (
	// MaxAccessTokenTTL: beyond 15 minutes a stolen bearer token is
	// good for longer than a revocation is worth waiting for (OWASP JSON
	// Web Token for Java Cheat Sheet, token explicit revocation).
	MaxAccessTokenTTL = 15 * time.Minute
	// HighAccessTokenTTL: an access token living more than an hour is a
	// session of its own that nothing revokes before it ends.
	HighAccessTokenTTL = time.Hour
	// MaxRefreshTokenTTL and MaxFamilyAge bound a grant's idle and
	// absolute lifetimes (RFC 9700 §4.14.2: refresh tokens should expire
	// when unused and be bound to the grant's end).
	MaxRefreshTokenTTL = 30 * 24 * time.Hour
	MaxFamilyAge       = 90 * 24 * time.Hour
	// MaxRefreshGrace: a longer replay window is a longer time a stolen,
	// rotated refresh token works without tripping reuse detection.
	MaxRefreshGrace = 30 * time.Second
	// MinPasswordLen is NIST SP 800-63B-4 §3.1.1.2's minimum for a
	// password used as the only factor; HighPasswordLen the floor under
	// which it is a finding of its own.
	MinPasswordLen  = 15
	HighPasswordLen = 8
	// SkewWarning and SkewHigh: verifiers allow verify.DefaultLeeway
	// (30s) of skew; past it tokens fail or live longer than issued.
	SkewWarning = 5 * time.Second
	SkewHigh    = 30 * time.Second
	// BackupWarning and BackupHigh are the ages of the last backup.
	BackupWarning = 24 * time.Hour
	BackupHigh    = 7 * 24 * time.Hour
)

// Checks are every check, in the order of docs/doctor.md.
var Checks = []CheckDef{
	{"issuer over http", []string{"ISSUER_HTTP"}, checkIssuer},
	{"key-encryption key file", []string{"KEK_FILE_MODE", "KEK_BESIDE_DATA"}, checkKEK},
	{"signing keys", []string{"KEY_OLD", "KEY_PREPUBLISH_SHORT"}, checkKeys},
	{"access-token lifetime", []string{"ACCESS_TTL_LONG", "CLIENT_ACCESS_TTL_LONG"}, checkAccessTTL},
	{"refresh-token lifetimes", []string{"REFRESH_TTL_LONG", "CLIENT_REFRESH_TTL_LONG", "REFRESH_FAMILY_LONG", "REFRESH_GRACE_LONG"}, checkRefresh},
	{"admin scope for interactive clients", []string{"ADMIN_INTERACTIVE"}, checkAdminInteractive},
	{"token exchange audiences", []string{"EXCHANGE_AUDIENCE"}, checkExchange},
	{"introspection policy", []string{"INTROSPECT_WIDE"}, checkIntrospection},
	{"password policy", []string{"PASSWORD_SHORT", "PASSWORD_NO_BREACH_LIST"}, checkPasswords},
	{"password grant", []string{"PASSWORD_GRANT"}, checkPasswordGrant},
	{"several nodes without Redis", []string{"NODES_WITHOUT_REDIS"}, checkNodes},
	{"clock skew with the database", []string{"CLOCK_SKEW"}, checkSkew},
	{"SQLite file", []string{"SQLITE_NETWORK_FS", "SQLITE_NOT_WAL"}, checkSQLite},
	{"trusted proxies", []string{"TRUSTED_PROXIES_WIDE"}, checkProxies},
	{"running server", []string{"PROBE_UNREACHABLE", "PROBE_HTTP", "PROBE_ISSUER_MISMATCH", "METRICS_EXPOSED"}, checkProbe},
	{"backups", []string{"BACKUP_NONE", "BACKUP_OLD"}, checkBackup},
}

const (
	srcTLS      = "OWASP Transport Layer Security Cheat Sheet; RFC 8414 §2 (the issuer is an https URL)"
	srcKeyMgmt  = "OWASP Key Management Cheat Sheet (key storage)"
	srcJWT      = "OWASP JSON Web Token for Java Cheat Sheet (token explicit revocation); RFC 8725 §3.10"
	srcRefresh  = "RFC 9700 §4.14.2 (refresh token protection)"
	srcPrivs    = "RFC 9700 §2.3 (access token privilege restriction); OWASP Authorization Cheat Sheet (least privilege)"
	srcIntro    = "RFC 7662 §4 (the server decides who may introspect what); OWASP Authorization Cheat Sheet (least privilege)"
	srcNIST     = "NIST SP 800-63B-4 §3.1.1.2 (password verifiers)"
	srcROPC     = "RFC 9700 §2.4 (the resource owner password credentials grant MUST NOT be used)"
	srcThrottle = "OWASP Authentication Cheat Sheet (protect against automated attacks); NIST SP 800-63B-4 §3.2.2 (rate limiting)"
	srcSQLite   = "sqlite.org: WAL does not work over a network filesystem, and file locking is broken on many (sqlite.org/wal.html, sqlite.org/useovernet.html)"
	srcMgmt     = "OWASP REST Security Cheat Sheet (management endpoints)"
	srcBackup   = "OWASP Secure Product Design Cheat Sheet; docs/operations.md (backups)"
)

func checkIssuer(s *Snapshot) []Finding {
	u, err := url.Parse(s.Issuer)
	if s.Issuer == "" || err != nil || u.Scheme != "http" {
		return nil
	}
	f := Finding{ID: "ISSUER_HTTP", Subject: "--issuer", Seen: s.Issuer, Source: srcTLS}
	switch {
	case s.Dev:
		f.Severity = Info
		f.Why = "--dev serves http on loopback only, so tokens and the dev client's secret never leave this machine; a deployment needs https."
		f.Fix = "outside development, run without --dev and with --issuer https://auth.example.com"
	case s.InsecureAllowHTTP:
		f.Severity = Warning
		f.Why = "with --insecure-allow-http the issuer is http: tokens and client secrets are safe only if a TLS-terminating proxy you trust sits in front on every path."
		f.Fix = "set --issuer https://... (the proxy's public URL); keep --insecure-allow-http only if TLS ends at that proxy"
	default:
		f.Severity = High
		f.Why = "an http issuer sends bearer tokens, client secrets and passwords in clear text (latch serve refuses to start with it)."
		f.Fix = "set --issuer https://auth.example.com and terminate TLS in front of latch"
	}
	return []Finding{f}
}

func checkKEK(s *Snapshot) []Finding {
	if s.KEK.FromEnv || s.KEK.Path == "" {
		return nil
	}
	var out []Finding
	if s.KEK.Mode&0o077 != 0 {
		out = append(out, Finding{ID: "KEK_FILE_MODE", Severity: High, Subject: "key-encryption key " + s.KEK.Path,
			Seen:   fmt.Sprintf("mode %04o", s.KEK.Mode),
			Why:    "other users of this host can read the key that decrypts every signing key, and so forge any token.",
			Source: srcKeyMgmt, Fix: "chmod 600 " + s.KEK.Path})
	}
	if s.DataDir != "" && !s.PostgreSQL && within(s.DataDir, s.KEK.Path) {
		f := Finding{ID: "KEK_BESIDE_DATA", Severity: Warning, Subject: "key-encryption key " + s.KEK.Path,
			Seen:   "inside --data-dir " + s.DataDir,
			Why:    "a copy of the data directory (a backup, a volume snapshot) then holds the sealed signing keys and the key that opens them.",
			Source: srcKeyMgmt,
			Fix:    "move it out of the data directory: `latch keys new-kek --out /etc/latch/kek` is for new deployments; for this one, `mv " + s.KEK.Path + " /etc/latch/kek` and pass --kek-file /etc/latch/kek (or LATCH_KEK from a secret store)"}
		if s.Dev {
			f.Severity = Info
			f.Why = "--dev generates the key-encryption key inside the data directory so that it needs nothing else; " + f.Why
		}
		out = append(out, f)
	}
	return out
}

// within reports whether path is inside dir.
func within(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func checkKeys(s *Snapshot) []Finding {
	var out []Finding
	if signer := signingKey(s.Keys, s.Now); signer != nil && s.KeyMaxAge > 0 {
		if age := s.Now.Sub(signer.ActiveAt); age > s.KeyMaxAge {
			out = append(out, Finding{ID: "KEY_OLD", Severity: Warning, Subject: "signing key " + signer.ID,
				Seen:   fmt.Sprintf("signing since %s (%s), longer than --key-max-age %s", signer.ActiveAt.UTC().Format(time.RFC3339), days(age), days(s.KeyMaxAge)),
				Why:    "the longer one key signs, the more tokens a leak of it exposes and the less practised rotation is when it must happen at once.",
				Source: "OWASP Key Management Cheat Sheet (cryptoperiods)",
				Fix:    "latch keys rotate (the new key is published --key-prepublish before it signs), on a schedule such as a monthly cron job"})
		}
	}
	if s.JWKSCacheTime > 0 && s.PrePublish < s.JWKSCacheTime {
		out = append(out, Finding{ID: "KEY_PREPUBLISH_SHORT", Severity: Warning, Subject: "--key-prepublish",
			Seen:   fmt.Sprintf("%s, shorter than the %s a resource server may keep the JWKS (--jwks-cache-time)", s.PrePublish, s.JWKSCacheTime),
			Why:    "after a rotation, tokens signed by the new key reach resource servers whose cached JWKS does not hold it yet, and fail until they refetch.",
			Source: "RFC 8725 §3.10; RFC 7517 §5 (JWK Set)",
			Fix:    fmt.Sprintf("--key-prepublish %s (at least the longest JWKS cache of your resource servers)", s.JWKSCacheTime)})
	}
	return out
}

// signingKey is the key that signs at now: the latest ActiveAt reached,
// not retired or removed.
func signingKey(ks []*latch.Key, now time.Time) *latch.Key {
	var best *latch.Key
	for _, k := range ks {
		if k.ActiveAt.After(now) || !k.RetiredAt.IsZero() || !k.RemovedAt.IsZero() {
			continue
		}
		if best == nil || k.ActiveAt.After(best.ActiveAt) {
			best = k
		}
	}
	return best
}

func days(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Second).String()
}

func ttlSeverity(d time.Duration) Severity {
	if d > HighAccessTokenTTL {
		return High
	}
	return Warning
}

func checkAccessTTL(s *Snapshot) []Finding {
	var out []Finding
	why := "a bearer access token cannot be recalled from a resource server that verifies it locally: a stolen one works until it expires."
	if s.AccessTokenTTL > MaxAccessTokenTTL {
		out = append(out, Finding{ID: "ACCESS_TTL_LONG", Severity: ttlSeverity(s.AccessTokenTTL), Subject: "--access-token-ttl",
			Seen: s.AccessTokenTTL.String(), Why: why, Source: srcJWT,
			Fix: "--access-token-ttl 10m (clients keep a session with refresh tokens, not long access tokens)"})
	}
	for _, c := range s.Clients {
		if c.AccessTokenTTL > MaxAccessTokenTTL {
			out = append(out, Finding{ID: "CLIENT_ACCESS_TTL_LONG", Severity: ttlSeverity(c.AccessTokenTTL), Subject: "client " + c.ID,
				Seen: "access-token lifetime " + c.AccessTokenTTL.String(), Why: why, Source: srcJWT,
				Fix: "latch client update " + c.ID + " --access-token-ttl 10m"})
		}
	}
	return out
}

func checkRefresh(s *Snapshot) []Finding {
	var out []Finding
	why := "a refresh token is a long-lived credential: the longer it lives unused, the longer a stolen one is worth replaying."
	if s.RefreshTokenTTL > MaxRefreshTokenTTL {
		out = append(out, Finding{ID: "REFRESH_TTL_LONG", Severity: Warning, Subject: "--refresh-token-ttl",
			Seen: days(s.RefreshTokenTTL), Why: why, Source: srcRefresh, Fix: "--refresh-token-ttl 336h (14 days, the default)"})
	}
	for _, c := range s.Clients {
		if c.RefreshTokenTTL > MaxRefreshTokenTTL {
			out = append(out, Finding{ID: "CLIENT_REFRESH_TTL_LONG", Severity: Warning, Subject: "client " + c.ID,
				Seen: "refresh-token lifetime " + days(c.RefreshTokenTTL), Why: why, Source: srcRefresh,
				Fix: "latch client update " + c.ID + " --refresh-token-ttl 336h"})
		}
	}
	if s.FamilyMaxAge > MaxFamilyAge {
		out = append(out, Finding{ID: "REFRESH_FAMILY_LONG", Severity: Warning, Subject: "--refresh-family-max-age",
			Seen:   days(s.FamilyMaxAge),
			Why:    "a grant that rotation keeps alive for months never makes the user authenticate again, so a stolen family outlives any password change the user does not make.",
			Source: srcRefresh + "; OWASP Session Management Cheat Sheet (absolute timeout)",
			Fix:    "--refresh-family-max-age 720h (30 days, the default)"})
	}
	if s.RefreshGrace > MaxRefreshGrace {
		out = append(out, Finding{ID: "REFRESH_GRACE_LONG", Severity: Warning, Subject: "--refresh-grace",
			Seen:   s.RefreshGrace.String(),
			Why:    "for the grace window a rotated refresh token may be used again without revoking its family, so reuse detection cannot see a thief who replays it within that window.",
			Source: srcRefresh, Fix: "--refresh-grace 10s (the default: enough for a retry or a second tab)"})
	}
	return out
}

// interactive reports whether c acts for a user signed in through a
// browser or a form.
func interactive(c *latch.Client) bool {
	return c.AllowsGrant(latch.GrantAuthorizationCode) || c.AllowsGrant(latch.GrantPassword)
}

func checkAdminInteractive(s *Snapshot) []Finding {
	var out []Finding
	for _, c := range s.Clients {
		if slices.Contains(c.Scopes, latch.ScopeAdmin) && interactive(c) {
			out = append(out, Finding{ID: "ADMIN_INTERACTIVE", Severity: High, Subject: "client " + c.ID,
				Seen:   fmt.Sprintf("scope %s with grants %s", latch.ScopeAdmin, strings.Join(c.GrantTypes, ",")),
				Why:    "a token from a browser or app login that can administer latch turns one XSS, phished session or stolen refresh token into control of every client and key.",
				Source: srcPrivs,
				Fix:    "latch client update " + c.ID + " --scope \"" + strings.Join(without(c.Scopes, latch.ScopeAdmin), " ") + "\" (administer with a separate client_credentials client)"})
		}
	}
	return out
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, v := range list {
		if !slices.Contains(drop, v) {
			out = append(out, v)
		}
	}
	return out
}

// checkExchange: latch records no owner for an audience. A token-exchange
// client is a gateway in front of an API: registered for latch's own
// audiences it can mint admin-API JWTs from any user token carrying
// them; registered for several APIs, it can mint JWTs for APIs it does
// not front.
func checkExchange(s *Snapshot) []Finding {
	var out []Finding
	for _, c := range s.Clients {
		if !c.AllowsGrant(latch.GrantTokenExchange) {
			continue
		}
		f := Finding{ID: "EXCHANGE_AUDIENCE", Subject: "client " + c.ID, Seen: "token exchange to audiences " + strings.Join(c.Audiences, ","),
			Source: "RFC 8693 §5 (the server must limit which audiences a client may obtain tokens for); " + srcPrivs}
		own := without(c.Audiences, latch.AudienceAdmin, latch.AudienceIntrospection)
		switch {
		case len(own) < len(c.Audiences):
			f.Severity = High
			f.Why = "the client may exchange any token carrying latch's own audience for a JWT to it, so a gateway's credentials become admin-API (or introspection) credentials."
			f.Fix = "latch client update " + c.ID + " --audience " + strings.Join(own, ",")
		case len(own) > 1:
			f.Severity = Warning
			f.Why = "a gateway fronts one API; registered for several, it can mint JWTs for APIs it does not own, so one compromised gateway reaches all of them."
			f.Fix = "one gateway client per API: latch client update " + c.ID + " --audience " + own[0] + ", and latch client create for the others"
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}

// checkIntrospection: a client may introspect tokens of other clients
// when it holds latch:introspect and shares an audience with them. Wide
// means it can learn about every other client's tokens, or that every
// confidential client can introspect.
func checkIntrospection(s *Snapshot) []Finding {
	var introspectors, confidential []*latch.Client
	for _, c := range s.Clients {
		if c.AuthMethod == latch.AuthNone {
			continue
		}
		confidential = append(confidential, c)
		if slices.Contains(c.Scopes, latch.ScopeIntrospect) {
			introspectors = append(introspectors, c)
		}
	}
	var out []Finding
	if len(confidential) >= 2 && len(introspectors) == len(confidential) {
		out = append(out, Finding{ID: "INTROSPECT_WIDE", Severity: Warning, Subject: "every confidential client",
			Seen:   fmt.Sprintf("%d of %d confidential clients hold %s", len(introspectors), len(confidential), latch.ScopeIntrospect),
			Why:    "introspection answers which tokens are live and for whom: when every client may ask, one leaked client secret is an oracle for every token of its audiences.",
			Source: srcIntro, Fix: "keep " + latch.ScopeIntrospect + " for resource servers and gateways: latch client update ID --scope \"...\" without it for the others"})
	}
	for _, c := range introspectors {
		others := 0
		covered := true
		for _, o := range s.Clients {
			if o.ID == c.ID || len(o.Audiences) == 0 {
				continue
			}
			others++
			if !slices.ContainsFunc(o.Audiences, func(a string) bool { return slices.Contains(c.Audiences, a) }) {
				covered = false
			}
		}
		if others >= 2 && covered {
			out = append(out, Finding{ID: "INTROSPECT_WIDE", Severity: Warning, Subject: "client " + c.ID,
				Seen:   fmt.Sprintf("%s with audiences %s: may introspect the tokens of all %d other clients", latch.ScopeIntrospect, strings.Join(c.Audiences, ","), others),
				Why:    "a resource server should learn about the tokens meant for it; one that can introspect every client's tokens is an oracle for all of them if its secret leaks.",
				Source: srcIntro, Fix: "latch client update " + c.ID + " --audience API (only the audiences it serves)"})
		}
		if interactive(c) {
			out = append(out, Finding{ID: "INTROSPECT_WIDE", Severity: Warning, Subject: "client " + c.ID,
				Seen:   fmt.Sprintf("%s on a client with grants %s", latch.ScopeIntrospect, strings.Join(c.GrantTypes, ",")),
				Why:    "introspection is for resource servers; a login client holding it lets whoever holds its credentials test other clients' tokens.",
				Source: srcIntro, Fix: "latch client update " + c.ID + " --scope \"" + strings.Join(without(c.Scopes, latch.ScopeIntrospect), " ") + "\""})
		}
	}
	return out
}

func checkPasswords(s *Snapshot) []Finding {
	inUse := s.Users > 0 || slices.ContainsFunc(s.Clients, interactive)
	if !inUse {
		return nil
	}
	var out []Finding
	if s.MinPasswordLen < MinPasswordLen {
		sev := Warning
		if s.MinPasswordLen < HighPasswordLen {
			sev = High
		}
		out = append(out, Finding{ID: "PASSWORD_SHORT", Severity: sev, Subject: "--min-password-length",
			Seen:   fmt.Sprint(s.MinPasswordLen),
			Why:    "length is what makes a password resist guessing; NIST requires at least 15 characters for a password that is the only factor.",
			Source: srcNIST, Fix: "--min-password-length 15"})
	}
	if s.Blocklist == "" {
		out = append(out, Finding{ID: "PASSWORD_NO_BREACH_LIST", Severity: Warning, Subject: "--breached-passwords",
			Seen:   "not set: only the built-in list of the 30,000 most common passwords is refused",
			Why:    "passwords known from breaches are the first ones credential stuffing tries, and NIST requires refusing passwords from breach corpora, not only the most common ones.",
			Source: srcNIST, Fix: "--breached-passwords FILE (one SHA-1 or password per line, e.g. the Pwned Passwords list; docs/users.md)"})
	}
	return out
}

func checkPasswordGrant(s *Snapshot) []Finding {
	var out []Finding
	for _, c := range s.Clients {
		if c.AllowsGrant(latch.GrantPassword) {
			out = append(out, Finding{ID: "PASSWORD_GRANT", Severity: Warning, Subject: "client " + c.ID,
				Seen:   "grant " + latch.GrantPassword,
				Why:    "the client sees the user's password, and the grant cannot carry a second factor or a consent step.",
				Source: srcROPC,
				Fix: "latch client update " + c.ID + " --grant " + strings.Join(append(without(c.GrantTypes, latch.GrantPassword), grantIfMissing(c)...), ",") +
					redirectIfMissing(c) + " (authorization_code with PKCE; docs/oauth-flows.md)"})
		}
	}
	return out
}

func redirectIfMissing(c *latch.Client) string {
	if len(c.RedirectURIs) > 0 {
		return ""
	}
	return " --redirect-uri https://app.example.com/callback"
}

func grantIfMissing(c *latch.Client) []string {
	if c.AllowsGrant(latch.GrantAuthorizationCode) {
		return nil
	}
	return []string{latch.GrantAuthorizationCode}
}

func checkNodes(s *Snapshot) []Finding {
	if len(s.Nodes) < 2 || s.RedisURL {
		return nil
	}
	return []Finding{{ID: "NODES_WITHOUT_REDIS", Severity: Warning, Subject: "--redis-url",
		Seen:   fmt.Sprintf("not set, with %d server nodes on the database: %s", len(s.Nodes), strings.Join(s.Nodes, ", ")),
		Why:    "each node throttles logins on its own, so an attacker gets every node's allowance of guesses, and a revocation reaches the other nodes' caches only by polling.",
		Source: srcThrottle, Fix: "--redis-url redis://HOST:6379/0 on every node (docs/operations.md)"}}
}

func checkSkew(s *Snapshot) []Finding {
	if s.DBTime.IsZero() {
		return nil
	}
	skew := s.Now.Sub(s.DBTime)
	if skew < 0 {
		skew = -skew
	}
	if skew <= SkewWarning {
		return nil
	}
	sev := Warning
	if skew > SkewHigh {
		sev = High
	}
	return []Finding{{ID: "CLOCK_SKEW", Severity: sev, Subject: "clock of this host vs the database",
		Seen:   fmt.Sprintf("host %s, database %s (%s apart)", s.Now.UTC().Format(time.RFC3339), s.DBTime.UTC().Format(time.RFC3339), skew.Round(time.Millisecond)),
		Why:    "token lifetimes, refresh grace and key schedules are computed on one clock and checked on another: past the verifiers' leeway, fresh tokens are refused or expired ones accepted.",
		Source: "RFC 8725 §3.10; RFC 7519 §4.1.4 (small leeway for clock skew)",
		Fix:    "run NTP (chrony or systemd-timesyncd) on this host and the database host"}}
}

func checkSQLite(s *Snapshot) []Finding {
	if s.SQLite == nil {
		return nil
	}
	var out []Finding
	if s.SQLite.Network {
		out = append(out, Finding{ID: "SQLITE_NETWORK_FS", Severity: High, Subject: "SQLite database " + s.SQLite.Path,
			Seen:   "on a " + s.SQLite.FSType + " filesystem",
			Why:    "SQLite's locks do not hold over a network filesystem, so two writers can corrupt the database and lose issued or revoked tokens.",
			Source: srcSQLite, Fix: "--data-dir on a local disk, or --database-url postgres://... for shared storage"})
	}
	if s.SQLite.JournalMode != "" && s.SQLite.JournalMode != "wal" {
		out = append(out, Finding{ID: "SQLITE_NOT_WAL", Severity: Warning, Subject: "SQLite database " + s.SQLite.Path,
			Seen:   "journal_mode " + s.SQLite.JournalMode,
			Why:    "without WAL every token check waits for writes and a reader can see SQLITE_BUSY under load; latch serve switches the file to WAL when it starts, so something changed it since.",
			Source: srcSQLite, Fix: "sqlite3 " + s.SQLite.Path + " 'PRAGMA journal_mode=WAL' while no latch runs (or restart latch serve, which sets it)"})
	}
	return out
}

func checkProxies(s *Snapshot) []Finding {
	var out []Finding
	for _, p := range s.TrustedProxies {
		narrow := 24
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			narrow = 64
		}
		var sev Severity
		var why string
		switch {
		case p.Bits() == 0:
			sev, why = High, "every address is trusted to set X-Forwarded-For, so any client picks the address the login throttle counts, and evades it."
		case p.Bits() < narrow:
			sev, why = Warning, "every host in so wide a range may set X-Forwarded-For: one compromised or tenant host there can spoof addresses and evade the login throttle."
		case !p.Addr().IsPrivate() && !p.Addr().IsLoopback():
			sev, why = Warning, "a public range is trusted to set X-Forwarded-For: hosts you do not run there can spoof client addresses and evade the login throttle."
		default:
			continue
		}
		out = append(out, Finding{ID: "TRUSTED_PROXIES_WIDE", Severity: sev, Subject: "--trusted-proxies",
			Seen: p.String(), Why: why, Source: srcThrottle,
			Fix: "--trusted-proxies with the addresses of your reverse proxies only (e.g. 10.0.3.7,10.0.3.8)"})
	}
	return out
}

func checkProbe(s *Snapshot) []Finding {
	p := s.Probe
	if p == nil {
		return nil
	}
	u, _ := url.Parse(p.URL)
	loopback := u != nil && isLoopback(u.Hostname())
	var out []Finding
	if p.DiscoveryErr != "" {
		out = append(out, Finding{ID: "PROBE_UNREACHABLE", Severity: Warning, Subject: "--url " + p.URL,
			Seen: p.DiscoveryErr, Why: "the server's metadata could not be read, so the probe checks did not run.",
			Source: "RFC 8414 §3", Fix: "check that latch serve runs at --url, and that this host can reach it"})
	}
	if u != nil && u.Scheme == "http" && !loopback {
		out = append(out, Finding{ID: "PROBE_HTTP", Severity: High, Subject: "--url " + p.URL,
			Seen: "answers over http on a non-loopback address", Why: "anyone on the path reads the tokens, client secrets and passwords sent to it.",
			Source: srcTLS, Fix: "serve latch behind TLS only; close the http port or redirect it to https"})
	}
	if p.DiscoveryErr == "" && s.Issuer != "" && p.Issuer != s.Issuer {
		out = append(out, Finding{ID: "PROBE_ISSUER_MISMATCH", Severity: Warning, Subject: "--url " + p.URL,
			Seen:   fmt.Sprintf("advertises issuer %s, the configuration read here says %s", p.Issuer, s.Issuer),
			Why:    "doctor judged a configuration that is not the running server's, or tokens carry an issuer the resource servers do not expect.",
			Source: "RFC 8414 §3.3 (the issuer must be identical)", Fix: "run latch doctor with the server's --config / environment, or fix --issuer"})
	}
	if p.MetricsStatus == 200 && !loopback {
		out = append(out, Finding{ID: "METRICS_EXPOSED", Severity: Warning, Subject: p.URL + "/metrics",
			Seen:   "HTTP 200 from this host",
			Why:    "the metrics tell an outsider request rates, failed logins and token counts: reconnaissance for an attack and a measure of its effect.",
			Source: srcMgmt, Fix: "block /metrics at the reverse proxy (allow only the Prometheus scraper's address)"})
	}
	return out
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func checkBackup(s *Snapshot) []Finding {
	if s.Backup == nil {
		return []Finding{{ID: "BACKUP_NONE", Severity: Info, Subject: "backups",
			Seen:   "no backup recorded in " + filepath.Join(s.DataDir, "backup.json"),
			Why:    "a lost database loses every client registration and user, and a restored old one brings revoked tokens back to life; doctor only sees backups made with latch backup.",
			Source: srcBackup, Fix: "latch backup --to FILE on a schedule (or your database's own backups, which doctor cannot see)"}}
	}
	age := s.Now.Sub(s.Backup.At)
	if age <= BackupWarning {
		return nil
	}
	sev := Warning
	if age > BackupHigh {
		sev = High
	}
	return []Finding{{ID: "BACKUP_OLD", Severity: sev, Subject: "backups",
		Seen:   fmt.Sprintf("last backup %s (%s ago) to %s", s.Backup.At.UTC().Format(time.RFC3339), days(age), s.Backup.To),
		Why:    "everything registered since the last backup (clients, users, revocations) is lost with the database.",
		Source: srcBackup, Fix: "latch backup --to FILE daily (a cron job or systemd timer)"}}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/doctor"
	"github.com/latch-auth/latch/postgres"
	"github.com/latch-auth/latch/sqlite"
)

// doctorFlags are doctor's own flags; the rest are serve's.
type doctorFlags struct {
	url           string
	json          bool
	keyMaxAge     time.Duration
	jwksCacheTime time.Duration
}

// defaultJWKSCacheTime is the longest max-age latch gives its JWKS (the
// keys package caps it at 15 minutes): a resource server honouring it
// keeps the keys no longer.
const defaultJWKSCacheTime = 15 * time.Minute

func newDoctorCmd(e *env) *cobra.Command {
	var d doctorFlags
	serveCmd := newServeCmd(e)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "find the known pitfalls in this deployment's configuration and data (changes nothing)",
		Long: `Check the configuration latch serve would run with (the same flags,
LATCH_* environment and --config file) and the store it would use, for the
pitfalls the OWASP cheat sheets, RFC 9700, RFC 8725 and NIST SP 800-63B
warn about. With --url it also probes the running server.

doctor never writes: it opens SQLite read-only, runs no migration, takes no
lock and probes with GET requests only. Each finding says what was seen,
why it matters (with its source) and what fixes it (docs/doctor.md).

Exit status: 0 when nothing needs fixing, 1 with warnings, 2 with a high
finding (or a usage error), so a CI job can gate a deployment on it.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyConfig(cmd, e)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runDoctor(cmd, e, &d) },
	}
	f := cmd.Flags()
	// serve's flags, bound to serve's own variables: doctor reads them
	// by name, so it judges exactly what serve would parse.
	f.AddFlagSet(serveCmd.Flags())
	f.StringVar(&d.url, "url", "", "probe the running server at this URL too (discovery, TLS, /metrics); GET requests only")
	f.BoolVar(&d.json, "json", false, "print the findings as JSON")
	f.DurationVar(&d.keyMaxAge, "key-max-age", 90*24*time.Hour, "how long one signing key may sign before it should be rotated")
	f.DurationVar(&d.jwksCacheTime, "jwks-cache-time", defaultJWKSCacheTime, "the longest time your resource servers keep a fetched JWKS")
	return cmd
}

func runDoctor(cmd *cobra.Command, e *env, d *doctorFlags) error {
	ctx := cmd.Context()
	s, err := doctorSnapshot(ctx, cmd, e, d)
	if err != nil {
		return err
	}
	findings := doctor.Check(s)
	if d.json {
		if findings == nil {
			findings = []doctor.Finding{}
		}
		if err := printJSON(e, map[string]any{"findings": findings, "exit_code": doctor.Code(findings)}); err != nil {
			return err
		}
	} else {
		printFindings(e.stdout, findings)
	}
	if c := doctor.Code(findings); c != 0 {
		return exitCode(c)
	}
	return nil
}

func printFindings(w io.Writer, fs []doctor.Finding) {
	counts := map[doctor.Severity]int{}
	for _, f := range fs {
		counts[f.Severity]++
		fmt.Fprintf(w, "%-7s %s  %s: %s\n", strings.ToUpper(string(f.Severity)), f.ID, f.Subject, f.Seen)
		fmt.Fprintf(w, "        why: %s (%s)\n", f.Why, f.Source)
		fmt.Fprintf(w, "        fix: %s\n\n", f.Fix)
	}
	fmt.Fprintf(w, "%d high, %d warning(s), %d info\n", counts[doctor.High], counts[doctor.Warning], counts[doctor.Info])
}

// doctorSnapshot gathers what the checks look at, writing nothing.
func doctorSnapshot(ctx context.Context, cmd *cobra.Command, e *env, d *doctorFlags) (*doctor.Snapshot, error) {
	f := cmd.Flags()
	str := func(n string) string { v, _ := f.GetString(n); return v }
	dur := func(n string) time.Duration { v, _ := f.GetDuration(n); return v }
	boolean := func(n string) bool { v, _ := f.GetBool(n); return v }
	minLen, _ := f.GetInt("min-password-length")
	proxyFlags, _ := f.GetStringSlice("trusted-proxies")

	s := &doctor.Snapshot{
		Now: time.Now(), Dev: boolean("dev"), Issuer: str("issuer"), InsecureAllowHTTP: boolean("insecure-allow-http"),
		AccessTokenTTL: dur("access-token-ttl"), MaxAccessTokenTTL: dur("max-access-token-ttl"),
		RefreshTokenTTL: dur("refresh-token-ttl"), FamilyMaxAge: dur("refresh-family-max-age"), RefreshGrace: dur("refresh-grace"),
		PrePublish: dur("key-prepublish"), MinPasswordLen: minLen, Blocklist: str("breached-passwords"),
		RedisURL: str("redis-url") != "", DataDir: str("data-dir"), PostgreSQL: str("database-url") != "",
		KeyMaxAge: d.keyMaxAge, JWKSCacheTime: d.jwksCacheTime,
	}
	var err error
	if s.TrustedProxies, err = parseProxies(proxyFlags); err != nil {
		return nil, err
	}
	if s.Issuer == "" {
		if !s.Dev {
			return nil, usagef("--issuer is required without --dev, as for latch serve (e.g. --issuer https://auth.example.com)")
		}
		// The issuer of --dev comes from the port it got: the running
		// (or last) serve recorded it.
		rec, err := servedIssuer(s.DataDir)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			s.Issuer = rec.Issuer
		} else {
			s.Issuer = devIssuer(str("listen"))
		}
	}
	s.KEK = findKEK(e, f.Changed("kek-file"), str("kek-file"), s.DataDir)

	if err := readStore(ctx, s, str("database-url")); err != nil {
		return nil, err
	}
	if err := readBackup(s); err != nil {
		return nil, err
	}
	if d.url != "" {
		s.Probe = probe(ctx, d.url)
	}
	return s, nil
}

// findKEK follows loadSealer's precedence to the key-encryption key,
// without reading the key itself.
func findKEK(e *env, flag bool, file, dataDir string) doctor.KEK {
	path := ""
	switch {
	case flag:
		path = file
	case e.getenv("LATCH_KEK") != "":
		return doctor.KEK{FromEnv: true}
	case file != "":
		path = file
	default:
		path = paths(dataDir).kek
	}
	fi, err := os.Stat(path)
	if err != nil {
		return doctor.KEK{}
	}
	return doctor.KEK{Path: path, Mode: uint32(fi.Mode().Perm())}
}

// readStore reads clients, keys and users, and what the backend tells of
// its health, opening it read-only.
func readStore(ctx context.Context, s *doctor.Snapshot, dbURL string) error {
	var st interface {
		latch.ClientStore
		latch.KeyStore
		latch.UserStore
		Close() error
	}
	if dbURL != "" {
		if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
			return usagef("--database-url must be a postgres:// URL; without it latch uses SQLite in --data-dir")
		}
		db, err := postgres.OpenReadOnly(ctx, dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		now := time.Now()
		dbNow, err := db.ServerTime(ctx)
		if err != nil {
			return err
		}
		// The round trip is counted in neither clock: compare at its
		// middle.
		s.Now = now.Add(time.Since(now) / 2)
		s.DBTime = dbNow
		if s.Nodes, err = db.ApplicationNames(ctx, nodeNameTag(s.Issuer)); err != nil {
			return err
		}
		st = db
	} else {
		p := paths(s.DataDir)
		db, err := sqlite.OpenReadOnly(ctx, p.db)
		if errors.Is(err, latch.ErrNotFound) {
			return fmt.Errorf("no latch database at %s (--data-dir %s): doctor creates nothing; point --data-dir (or --database-url) at what latch serve uses", abs(p.db), p.dir)
		}
		if err != nil {
			return err
		}
		defer db.Close()
		mode, err := db.JournalMode(ctx)
		if err != nil {
			return err
		}
		fsType, network := filesystem(p.db)
		s.SQLite = &doctor.SQLiteFile{Path: p.db, JournalMode: mode, FSType: fsType, Network: network}
		st = db
	}
	var err error
	if s.Clients, err = st.Clients(ctx); err != nil {
		return err
	}
	if s.Keys, err = st.Keys(ctx); err != nil {
		return err
	}
	users, err := st.Users(ctx)
	if err != nil {
		return err
	}
	s.Users = len(users)
	return nil
}

func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// readBackup reads DATA_DIR/backup.json, the record latch backup leaves.
func readBackup(s *doctor.Snapshot) error {
	path := filepath.Join(s.DataDir, "backup.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup record: %w", err)
	}
	var rec doctor.Backup
	if err := json.Unmarshal(b, &rec); err != nil || rec.At.IsZero() {
		return fmt.Errorf("backup record %s is not the JSON latch backup writes ({\"at\": RFC 3339 time, ...}): remove it or run latch backup again", path)
	}
	s.Backup = &rec
	return nil
}

// probe asks the running server at base for its metadata and /metrics.
func probe(ctx context.Context, base string) *doctor.Probe {
	base = strings.TrimRight(base, "/")
	p := &doctor.Probe{URL: base}
	hc := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		return hc.Do(req)
	}
	resp, err := get("/.well-known/oauth-authorization-server")
	switch {
	case err != nil:
		p.DiscoveryErr = err.Error()
	case resp.StatusCode != http.StatusOK:
		p.DiscoveryErr = "metadata answered HTTP " + resp.Status
	default:
		var md struct {
			Issuer string `json:"issuer"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil || md.Issuer == "" {
			p.DiscoveryErr = "metadata is not RFC 8414 JSON with an issuer"
		}
		p.Issuer = md.Issuer
	}
	if resp != nil {
		resp.Body.Close()
	}
	if resp, err := get("/metrics"); err == nil {
		p.MetricsStatus = resp.StatusCode
		resp.Body.Close()
	}
	return p
}

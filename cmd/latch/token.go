package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/authority"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

func newTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "issue, inspect and revoke tokens by value (works while a server runs on the same data directory)",
		Long: `Issue, inspect and revoke access and refresh tokens by value, on the
operator's authority: no client secret is needed, only the store (--data-dir
or --database-url) and, for JWTs, the key-encryption key (LATCH_KEK or
--kek-file; in --dev, DATA_DIR/kek).

TOKEN is read from stdin (one line) when it is "-" or absent; that is the
safe way: a token on the command line is visible to every user of the
machine in ps and /proc, and lands in the shell history.

  printf '%s\n' "$TOKEN" | latch token revoke

The rules are the server's own: issue mints what a client_credentials grant
would, inspect answers what introspection would (and, unlike the endpoint,
says why a token is inactive), revoke does what RFC 7009 revocation does.
A running server learns of a revocation at once for JWTs and refresh-token
families, and within 100 ms for opaque tokens it has cached.`,
	}
	cmd.AddCommand(tokenIssueCmd(e), tokenInspectCmd(e), tokenRevokeCmd(e))
	return cmd
}

// tokenFlags are the flags of every token command.
type tokenFlags struct {
	common
	keys   keysFlags
	issuer string
}

func addTokenFlags(cmd *cobra.Command, e *env, t *tokenFlags, issuerHelp string) {
	addCommon(cmd, e, &t.common, true)
	addKeyReadFlags(cmd, &t.keys)
	cmd.Flags().StringVar(&t.issuer, "issuer", "", issuerHelp)
}

// open opens the store and, when needKeys, the signing keys, and returns
// the Tokens of the server package over the plain store: this process has
// no token cache to keep in step, and running servers follow the store.
func (t *tokenFlags) open(cmd *cobra.Command, e *env, needKeys bool) (store, *authority.Tokens, error) {
	if err := t.checkIssuer(); err != nil {
		return nil, nil, err
	}
	m := &authority.Tokens{Issuer: t.issuer, MaxAccessTokenTTL: t.keys.maxTokenTTL}
	if !needKeys {
		db, err := openStore(cmd.Context(), &t.common, existing)
		if err != nil {
			return nil, nil, err
		}
		m.Store = db
		return db, m, nil
	}
	db, km, err := openKeys(cmd, e, &t.common, &t.keys)
	if err != nil {
		return nil, nil, err
	}
	m.Store, m.Keys = db, km
	return db, m, nil
}

// checkIssuer makes --issuer the issuer of the server on the data
// directory: the one its latch serve recorded at start-up
// (DATA_DIR/serve.lock) when --issuer is not given, and an error when
// --issuer names another, whose tokens that server would refuse. On
// PostgreSQL no record is kept: --issuer (or LATCH_ISSUER) is what the
// operator says.
func (t *tokenFlags) checkIssuer() error {
	if t.databaseURL != "" {
		return nil
	}
	if err := t.checkDataDir(existing); err != nil {
		return err
	}
	rec, err := servedIssuer(t.dataDir)
	if err != nil || rec == nil {
		return err
	}
	switch t.issuer {
	case "":
		t.issuer = rec.Issuer
	case rec.Issuer:
	default:
		return usagef("--issuer %s is not the issuer of the server on %s, which runs (or last ran) with %s: it calls tokens of any other issuer inactive. Use --issuer %s, or leave --issuer out",
			t.issuer, t.dataDir, rec.Issuer, rec.Issuer)
	}
	return nil
}

const issuerCheckHelp = "the issuer the server runs with; a JWT under another issuer is inactive (not_ours), as the server says. Default: the issuer the latch serve of --data-dir recorded at start-up; with --database-url, any issuer if our keys signed it"

func tokenIssueCmd(e *env) *cobra.Command {
	var (
		t          tokenFlags
		req        authority.IssueRequest
		ttl        time.Duration
		defaultTTL time.Duration
		scope      scopeList
	)
	cmd := &cobra.Command{
		Use:   "issue --client ID [--issuer URL]",
		Short: "mint an access token for a registered client, as its client_credentials grant would, without its secret",
		Long: `Mint an access token for a registered client, exactly as its
client_credentials grant would: the client must be registered for that
grant, --scope and --audience must be within its registration, and the token
has the client's format (JWT or opaque), lifetime, fingerprint binding and
encryption. No client secret is needed.

The token's iss is the issuer the server runs with: on a SQLite data
directory, the one its latch serve recorded at start-up (DATA_DIR/serve.lock),
and --issuer naming another is refused, since the server and every resource
server would refuse the token. On PostgreSQL (--database-url) --issuer (or
LATCH_ISSUER, or issuer in the --config file) is required and must be
exactly the server's: its --issuer, or http://LISTEN_ADDRESS under --dev.

Only the token is printed, so TOKEN=$(latch token issue ...) works; --json
prints the token response. A client registered with --token-fingerprint
needs its fingerprint cookie beside the token: only --json prints both.`,
		Example: `  TOKEN=$(latch token issue --client billing --scope read)
  latch token issue --client dev --audience dev-api --ttl 1m --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.ClientID == "" {
				return usagef("--client is required: the id of a client registered for client_credentials (`latch client list`)")
			}
			if ttl < 0 {
				return usagef("--ttl must not be negative")
			}
			if t.keys.maxTokenTTL > 0 && (defaultTTL <= 0 || defaultTTL > t.keys.maxTokenTTL) {
				return usagef("--access-token-ttl %v must be positive and at most --max-access-token-ttl %v", defaultTTL, t.keys.maxTokenTTL)
			}
			req.TTL = ttl
			req.Scope = scope.String()
			if err := t.checkIssuer(); err != nil {
				return err
			}
			if t.issuer == "" {
				return usagef("--issuer is required: the issuer the server runs with (its --issuer; http://LISTEN_ADDRESS under --dev), or the token will not verify; or set LATCH_ISSUER. Without it, the issuer recorded by the latch serve of --data-dir is used: none has run there yet")
			}
			db, m, err := t.open(cmd, e, true)
			if err != nil {
				return err
			}
			defer db.Close()
			m.AccessTokenTTL = defaultTTL
			out, err := m.Issue(cmd.Context(), req)
			if err != nil {
				return err
			}
			if t.common.json {
				return printJSON(e, out)
			}
			if out.FingerprintCookie != "" {
				// A JWT with an fgp claim is refused without its cookie:
				// printing the token alone would hand out a useless token.
				// Nothing was stored: a JWT is not.
				return fmt.Errorf("client %s binds its tokens to a fingerprint cookie (--token-fingerprint): the token is useless without it; use --json, which prints both", req.ClientID)
			}
			if out.Encrypted {
				fmt.Fprintln(e.stderr, "note: the token is encrypted to the client's resource server: only that server can read it; `latch token inspect` and revocation by value cannot")
			}
			fmt.Fprintln(e.stdout, out.AccessToken)
			return nil
		},
	}
	addTokenFlags(cmd, e, &t, "issuer URL the server runs with: the token's iss (default: the one the latch serve of --data-dir recorded; required with --database-url)")
	f := cmd.Flags()
	f.StringVar(&req.ClientID, "client", "", "id of the client the token is for (required)")
	f.Var(&scope, "scope", scopeFlagHelp("scopes, within the client's registration (default: none)"))
	f.StringSliceVar(&req.Audiences, "audience", nil, "audiences, within the client's registration (repeat or comma-separate; default: its first)")
	f.DurationVar(&ttl, "ttl", 0, "token lifetime, e.g. 1m; at most the client's (default: the client's)")
	f.DurationVar(&defaultTTL, "access-token-ttl", server.DefaultAccessTokenTTL, "access-token lifetime of clients that set none: the same as the server's --access-token-ttl")
	return cmd
}

func tokenInspectCmd(e *env) *cobra.Command {
	var t tokenFlags
	cmd := &cobra.Command{
		Use:     "inspect [TOKEN|-]",
		Aliases: []string{"introspect"},
		Short:   "say whether a token is active and what it carries, and if not why; exit 1 when it is not active",
		Long: `Say what the server's introspection would answer for a token: active or
not, with its client, subject, scope, audience, times, jti or id, and
refresh-token family. Unlike the HTTP endpoint, which answers exactly
{"active":false}, it says why a token is inactive: malformed, unknown,
expired, revoked, bad_signature, not_ours, wrong_type, not_yet_valid,
refused, client_deleted or encrypted. The token itself is never printed.

TOKEN is read from stdin when it is "-" or absent (preferred: see latch token
--help). --json prints an RFC 7662 introspection answer with "reason" and
"reason_detail" when inactive, "format" and "family_id".

Exit status: 0 when the token is active, 1 when it is not or on an error.`,
		Example: `  printf '%s\n' "$TOKEN" | latch token inspect
  latch token inspect --json < token.txt`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return t.withToken(cmd, e, args, func(m *authority.Tokens, raw string) error {
				return runInspect(cmd, e, &t, m, raw)
			})
		},
	}
	addTokenFlags(cmd, e, &t, issuerCheckHelp)
	return cmd
}

// runInspect prints what the server would say of raw; exit 1 when inactive.
func runInspect(cmd *cobra.Command, e *env, t *tokenFlags, m *authority.Tokens, raw string) error {
	in, err := m.Introspect(cmd.Context(), raw, authority.OperatorPolicy)
	if err != nil {
		return err
	}
	if t.common.json {
		err = printJSON(e, in)
	} else {
		err = printInspection(e, &in)
	}
	if err != nil {
		return err
	}
	if !in.Active {
		return exitCode(1)
	}
	return nil
}

func tokenRevokeCmd(e *env) *cobra.Command {
	var t tokenFlags
	cmd := &cobra.Command{
		Use:   "revoke [TOKEN|-]",
		Short: "revoke one token by value: an opaque access token, a refresh token's whole family, or a JWT (denylisted until it expires)",
		Long: `Revoke one token by value, as RFC 7009 revocation through the server does,
without the client's secret:

  - an opaque access token (lt_at_) is deleted, and the deletion logged so
    that running servers drop it from their caches (within 100 ms);
  - a refresh token (lt_rt_) revokes its whole family: its refresh tokens
    and every access token it issued, opaque or JWT;
  - a JWT access token is checked against our signing keys, then its
    (iss, jti) is denylisted until it expires: servers refuse it at once,
    resource servers following the revocation feed within their poll.

Revoking a revoked token is fine: it says so and exits 0. A token that is
malformed, unknown to this store, not ours, expired or encrypted to a
resource server is refused with the reason, exit 1, and nothing is written.

TOKEN is read from stdin when it is "-" or absent (preferred: see latch token
--help).`,
		Example: `  printf '%s\n' "$LEAKED" | latch token revoke
  latch token revoke --json - < leaked.txt`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return t.withToken(cmd, e, args, func(m *authority.Tokens, raw string) error {
				r, err := m.Revoke(cmd.Context(), raw)
				if err != nil {
					return err
				}
				if t.common.json {
					return printJSON(e, r)
				}
				printRevoked(e, r)
				return nil
			})
		},
	}
	addTokenFlags(cmd, e, &t, issuerCheckHelp)
	return cmd
}

// withToken reads the token of args (or stdin), opens the store, with the
// signing keys when the token needs them, and calls fn.
func (t *tokenFlags) withToken(cmd *cobra.Command, e *env, args []string, fn func(m *authority.Tokens, raw string) error) error {
	raw, err := readToken(e, args)
	if err != nil {
		return err
	}
	db, m, err := t.open(cmd, e, needsKeys(raw))
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(m, raw)
}

// needsKeys reports whether inspecting or revoking raw needs the signing
// keys (and so the key-encryption key): not for an opaque token.
func needsKeys(raw string) bool { return !token.IsOpaque(raw) }

// maxTokenInput bounds a token read from stdin or the command line: a JWT
// is at most 8 KiB (token.MaxJWTSize), one encrypted to a resource server
// 4/3 of that and its header.
const maxTokenInput = 16 << 10

// readToken returns the token to work on: args[0], or one line of stdin
// when it is "-" or absent. On a terminal stdin is read without echo, as a
// password is. A "Bearer " prefix, as copied from an Authorization header,
// is dropped. Empty, oversized and multi-line input is refused: a token
// never holds white space.
func readToken(e *env, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return cleanToken(args[0], "the TOKEN argument")
	}
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "Token (not echoed): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		return cleanToken(string(b), "the token typed")
	}
	if e.stdin == nil {
		return "", errNoToken
	}
	b, err := io.ReadAll(io.LimitReader(e.stdin, maxTokenInput+1))
	if err != nil {
		return "", fmt.Errorf("read token from stdin: %w", err)
	}
	return cleanToken(string(b), "stdin")
}

var errNoToken = errors.New("no token: pass it on stdin, e.g. printf '%s\\n' \"$TOKEN\" | latch token revoke (or as the argument, where other users can see it in ps)")

// cleanToken checks the token read from where, and trims the white space
// and Bearer prefix around it.
func cleanToken(raw, where string) (string, error) {
	if len(raw) > maxTokenInput {
		return "", fmt.Errorf("%s holds more than %d bytes: no latch token is that long", where, maxTokenInput)
	}
	raw = strings.TrimSpace(raw)
	if scheme, rest, _ := strings.Cut(raw, " "); strings.EqualFold(scheme, "Bearer") {
		raw = strings.TrimSpace(rest)
	}
	switch {
	case raw == "":
		return "", errNoToken
	case strings.ContainsAny(raw, "\r\n"):
		return "", fmt.Errorf("%s holds more than one line: give one token, alone on its line", where)
	case strings.ContainsAny(raw, " \t\v\f"):
		return "", fmt.Errorf("%s holds white space inside the token: no latch token does; give the token alone", where)
	}
	return raw, nil
}

// maxArgs is cobra.MaximumNArgs with a usage error (exit 2).
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("`latch %s` takes at most %d argument(s), got %d; see --help", cmd.CommandPath()[len("latch "):], n, len(args))
		}
		return nil
	}
}

func printInspection(e *env, in *authority.Inspection) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if in.Active {
		fmt.Fprintf(tw, "active:\tyes\n")
	} else {
		fmt.Fprintf(tw, "active:\tno, %s: %s\n", strings.ReplaceAll(string(in.Reason), "_", " "), in.Detail)
	}
	if in.Reason != authority.ReasonMalformed {
		fmt.Fprintf(tw, "format:\t%s\n", in.Format)
	}
	printClaims(tw, in)
	return tw.Flush()
}

// printClaims prints what is known of a token, as name: value lines.
func printClaims(tw io.Writer, in *authority.Inspection) {
	line := func(name, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", name, v)
		}
	}
	line("token type", in.TokenType)
	line("client_id", in.ClientID)
	line("subject", in.Sub)
	if in.TokenType != "" {
		scope := in.Scope
		if scope == "" {
			scope = "(none)"
		}
		line("scope", scope)
	}
	line("audience", strings.Join(in.Aud, " "))
	line("issuer", in.Iss)
	line("issued at", when(in.Iat))
	if in.Nbf != in.Iat {
		line("not before", when(in.Nbf))
	}
	line("expires at", when(in.Exp))
	if in.Format == authority.FormatOpaque {
		line("id", in.Jti)
	} else {
		line("jti", in.Jti)
	}
	line("family", in.FamilyID)
}

// when formats a NumericDate with how far it is from now.
func when(unix int64) string {
	if unix == 0 {
		return ""
	}
	t := time.Unix(unix, 0)
	d := time.Until(t).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %v)", stamp(t), d)
	}
	return fmt.Sprintf("%s (%v ago)", stamp(t), -d)
}

func printRevoked(e *env, r *authority.Revoked) {
	in := r.Token
	what := "the token"
	switch {
	case in.TokenType == "refresh_token":
		what = "refresh token " + in.Jti
	case in.Format == authority.FormatJWT && in.Jti != "":
		what = "JWT access token " + in.Jti
	case in.Jti != "":
		what = "opaque access token " + in.Jti
	}
	if in.ClientID != "" {
		what += " of client " + in.ClientID
		if in.Sub != "" && in.Sub != in.ClientID {
			what += " (subject " + in.Sub + ")"
		}
	}
	switch {
	case r.AlreadyRevoked:
		fmt.Fprintf(e.stdout, "already revoked: %s was revoked before; nothing changed\n", what)
	case r.FamilyRevoked:
		fmt.Fprintf(e.stdout, "revoked %s and its whole family %s: its refresh tokens and the access tokens it issued; servers refuse them now\n", what, in.FamilyID)
	case r.DenylistedUntil != nil:
		fmt.Fprintf(e.stdout, "revoked %s: denylisted until %s; servers refuse it now, resource servers following the revocation feed within their poll\n", what, stamp(*r.DenylistedUntil))
	default:
		fmt.Fprintf(e.stdout, "revoked %s: deleted; running servers drop it from their caches within 100 ms\n", what)
	}
}

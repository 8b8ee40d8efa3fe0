package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/authority"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/server"
)

func newClientCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "register and manage OAuth clients (works while a server runs on the same data directory)"}
	cmd.AddCommand(clientCreateCmd(e), clientUpdateCmd(e), clientListCmd(e), clientGetCmd(e), clientDeleteCmd(e), clientRotateCmd(e))
	return cmd
}

// clientFlags are the registration flags of client create and update.
type clientFlags struct {
	spec      registry.ClientSpec
	scope     scopeList
	ttl       time.Duration
	rttl      time.Duration
	jwksFile  string
	encryptTo string
}

func (cf *clientFlags) register(f *pflag.FlagSet, update bool) {
	authDefault, grantDefault, formatDefault := "client_secret_basic", []string{latch.GrantClientCredentials}, "jwt"
	if update {
		authDefault, grantDefault, formatDefault = "", nil, ""
	}
	f.StringVar(&cf.spec.Name, "name", "", "human-readable name")
	f.StringVar(&cf.spec.AuthMethod, "auth-method", authDefault, "client_secret_basic, client_secret_post, private_key_jwt or none")
	f.StringSliceVar(&cf.spec.GrantTypes, "grant", grantDefault, "grant types (repeat or comma-separate)")
	f.Var(&cf.scope, "scope", scopeFlagHelp("scopes the client may request"))
	f.StringSliceVar(&cf.spec.Audiences, "audience", nil, "audiences the client may request; the first is the default (repeat or comma-separate)")
	f.StringSliceVar(&cf.spec.RedirectURIs, "redirect-uri", nil, "redirect URIs (authorization code flow; repeat or comma-separate)")
	f.StringSliceVar(&cf.spec.WebOrigins, "web-origin", nil, "origins (scheme://host[:port], no path) of a browser app that calls the token, revocation and userinfo endpoints itself: CORS allows them (repeat or comma-separate)")
	f.StringVar(&cf.spec.AccessTokenFormat, "format", formatDefault, "access token format: jwt or opaque")
	f.DurationVar(&cf.ttl, "access-token-ttl", 0, "access token lifetime, e.g. 5m (0: the server's, "+shortDuration(server.DefaultAccessTokenTTL)+")")
	f.StringVar(&cf.jwksFile, "jwks-file", "", "the client's public JWK Set, for private_key_jwt")
	encHelp := "a file with the resource server's public EC JWK: JWT access tokens are encrypted to it (JWE, ECDH-ES+A256KW/A256GCM) so the client cannot read their claims"
	if update {
		encHelp += "; --encrypt-to '' stops encrypting"
	}
	f.StringVar(&cf.encryptTo, "encrypt-to", "", encHelp)
	f.BoolVar(&cf.spec.TokenFingerprint, "token-fingerprint", false,
		"bind JWT access tokens to a __Host-latch_fgp HttpOnly cookie set on the token response (fgp claim); for browser clients")
	f.BoolVar(&cf.spec.FirstParty, "first-party", false, "the operator's own app: /oauth2/authorize skips the consent page")
	dpopDefault := string(latch.DPoPOptional)
	if update {
		dpopDefault = ""
	}
	f.StringVar(&cf.spec.DPoP, "dpop", dpopDefault, "required: refuse token requests without a DPoP proof (RFC 9449); optional: bind the tokens of requests that send one")
	f.BoolVar(&cf.spec.RequirePAR, "require-par", false, "the client must push its authorization requests to /oauth2/par first (RFC 9126); /oauth2/authorize refuses the others")
	f.StringVar(&cf.spec.IDTokenAlg, "id-token-alg", "",
		"algorithm of the client's ID tokens (id_token_signed_response_alg): ES256, EdDSA, RS256 or PS256; empty: the server's --id-token-alg")
	f.DurationVar(&cf.rttl, "refresh-token-ttl", 0, "refresh token idle lifetime, e.g. 24h (0: the server's, "+shortDuration(server.DefaultRefreshTokenTTL)+"); the family's absolute lifetime still applies")
}

// files reads --jwks-file and --encrypt-to when given.
func (cf *clientFlags) files() (jwks, enc []byte, err error) {
	if cf.jwksFile != "" {
		if jwks, err = os.ReadFile(cf.jwksFile); err != nil {
			return nil, nil, fmt.Errorf("--jwks-file: %w", err)
		}
	}
	if cf.encryptTo != "" {
		if enc, err = os.ReadFile(cf.encryptTo); err != nil {
			return nil, nil, fmt.Errorf("--encrypt-to: %w", err)
		}
	}
	return jwks, enc, nil
}

// createSpec is the spec of client create.
func (cf *clientFlags) createSpec() (registry.ClientSpec, error) {
	spec := cf.spec
	jwks, enc, err := cf.files()
	if err != nil {
		return spec, err
	}
	spec.Scope = cf.scope.String()
	spec.JWKS, spec.AccessTokenEncryptionKey = jwks, enc
	spec.AccessTokenTTL = int64(cf.ttl / time.Second)
	spec.RefreshTokenTTL = int64(cf.rttl / time.Second)
	return spec, nil
}

// patch is the change of client update: the flags given on the command line.
func (cf *clientFlags) patch(f *pflag.FlagSet) (p registry.ClientPatch, changed bool, err error) {
	jwks, enc, err := cf.files()
	if err != nil {
		return p, false, err
	}
	scope := cf.scope.String()
	ttl, rttl := int64(cf.ttl/time.Second), int64(cf.rttl/time.Second)
	for name, set := range map[string]func(){
		"name":              func() { p.Name = &cf.spec.Name },
		"auth-method":       func() { p.AuthMethod = &cf.spec.AuthMethod },
		"grant":             func() { p.GrantTypes = &cf.spec.GrantTypes },
		"scope":             func() { p.Scope = &scope },
		"audience":          func() { p.Audiences = &cf.spec.Audiences },
		"redirect-uri":      func() { p.RedirectURIs = &cf.spec.RedirectURIs },
		"web-origin":        func() { p.WebOrigins = &cf.spec.WebOrigins },
		"format":            func() { p.AccessTokenFormat = &cf.spec.AccessTokenFormat },
		"access-token-ttl":  func() { p.AccessTokenTTL = &ttl },
		"refresh-token-ttl": func() { p.RefreshTokenTTL = &rttl },
		"jwks-file":         func() { p.JWKS = jwks },
		"token-fingerprint": func() { p.TokenFingerprint = &cf.spec.TokenFingerprint },
		"first-party":       func() { p.FirstParty = &cf.spec.FirstParty },
		"dpop":              func() { p.DPoP = &cf.spec.DPoP },
		"require-par":       func() { p.RequirePAR = &cf.spec.RequirePAR },
		"id-token-alg":      func() { p.IDTokenAlg = &cf.spec.IDTokenAlg },
		"encrypt-to": func() {
			p.AccessTokenEncryptionKey = enc
			if cf.encryptTo == "" {
				p.AccessTokenEncryptionKey = []byte("null")
			}
		},
	} {
		if f.Changed(name) {
			set()
			changed = true
		}
	}
	return p, changed, nil
}

// printRegistered prints a client just created or updated, its one-time
// secret, and what it cannot do as registered.
func printRegistered(e *env, c *common, v *registry.ClientView) error {
	for _, w := range v.Warnings {
		fmt.Fprintf(e.stderr, "warning: client %s: %s\n", v.ID, w)
	}
	if c.json {
		return printJSON(e, v)
	}
	printClient(e, v)
	if v.Secret != "" {
		fmt.Fprintln(e.stdout, "\nThe secret is shown only now; store it safely. `latch client rotate-secret` replaces it.")
	}
	return nil
}

func clientCreateCmd(e *env) *cobra.Command {
	var (
		c  common
		cf clientFlags
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "register a client; its secret is printed once and never stored",
		Example: `  latch client create --id billing --name Billing --scope "read write" --audience https://api.example.com
  latch client create --format opaque --access-token-ttl 5m --audience api
  latch client create --audience api --encrypt-to api-enc.pub.jwk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := cf.createSpec()
			if err != nil {
				return err
			}
			return withStore(cmd, &c, func(db store) error {
				v, err := (&registry.Clients{Store: db}).Create(cmd.Context(), spec)
				if err != nil {
					return err
				}
				return printRegistered(e, &c, v)
			})
		},
	}
	addCommon(cmd, e, &c, true)
	cmd.Flags().StringVar(&cf.spec.ID, "id", "", "client id (default: random)")
	cf.register(cmd.Flags(), false)
	return cmd
}

func clientUpdateCmd(e *env) *cobra.Command {
	var (
		c  common
		cf clientFlags
	)
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "change a client's registration: only the flags given change, under the rules of create; the secret stays",
		Long: `Change a client's registration. Only the flags given change; the rest,
and the client's secret, stay. The result must be a registration that
client create would accept. A list flag (--grant, --audience,
--redirect-uri) replaces the whole list. Tokens already issued keep what
they carry until they expire; a running server sees the change within a
second (at once through PATCH /admin/v1/clients/{id}).`,
		Example: `  latch client update billing --audience https://api.example.com
  latch client update billing --scope "read write" --access-token-ttl 5m`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, changed, err := cf.patch(cmd.Flags())
			if err != nil {
				return err
			}
			if !changed {
				return usagef("nothing to change: give the flags to change (see latch client update --help)")
			}
			return withStore(cmd, &c, func(db store) error {
				v, err := (&registry.Clients{Store: db}).Update(cmd.Context(), args[0], p)
				if err != nil {
					return err
				}
				return printRegistered(e, &c, v)
			})
		},
	}
	addCommon(cmd, e, &c, true)
	cf.register(cmd.Flags(), true)
	return cmd
}

func clientListCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "list", Short: "list clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(db store) error {
				cs, err := db.Clients(cmd.Context())
				if err != nil {
					return err
				}
				views := make([]*registry.ClientView, 0, len(cs))
				for _, cl := range cs {
					views = append(views, registry.ViewOf(cl))
				}
				if c.json {
					return printJSON(e, views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLIENT ID\tNAME\tAUTH\tFORMAT\tGRANTS\tSCOPE\tAUDIENCES")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.AuthMethod, v.AccessTokenFormat,
						strings.Join(v.GrantTypes, ","), v.Scope, strings.Join(v.Audiences, ","))
				}
				return tw.Flush()
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func clientGetCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "get CLIENT_ID", Short: "show one client", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				cl, err := db.Client(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, registry.ViewOf(cl))
				}
				printClient(e, registry.ViewOf(cl))
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func clientDeleteCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "delete CLIENT_ID", Short: "delete a client and every opaque token issued to it", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				if err := db.DeleteClient(cmd.Context(), args[0]); err != nil {
					return err
				}
				if c.json {
					return printJSON(e, map[string]any{"deleted": args[0]})
				}
				fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func clientRotateCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "rotate-secret CLIENT_ID", Short: "replace a client's secret; the old one stops working at once", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				v, err := (&registry.Clients{Store: db}).RotateSecret(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, v)
				}
				printClient(e, v)
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func printClient(e *env, v *registry.ClientView) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "client_id:\t%s\n", v.ID)
	if v.Secret != "" {
		fmt.Fprintf(tw, "client_secret:\t%s\n", v.Secret)
	}
	if v.Name != "" {
		fmt.Fprintf(tw, "name:\t%s\n", v.Name)
	}
	fmt.Fprintf(tw, "auth method:\t%s\n", v.AuthMethod)
	fmt.Fprintf(tw, "grant types:\t%s\n", strings.Join(v.GrantTypes, " "))
	fmt.Fprintf(tw, "scope:\t%s\n", v.Scope)
	fmt.Fprintf(tw, "audiences:\t%s\n", strings.Join(v.Audiences, " "))
	fmt.Fprintf(tw, "token format:\t%s\n", v.AccessTokenFormat)
	if v.AccessTokenTTL > 0 {
		fmt.Fprintf(tw, "token lifetime:\t%v\n", time.Duration(v.AccessTokenTTL)*time.Second)
	}
	if v.IDTokenAlg != "" {
		fmt.Fprintf(tw, "ID token alg:\t%s\n", v.IDTokenAlg)
	}
	if v.TokenFingerprint {
		fmt.Fprintf(tw, "token fingerprint:\tyes (fgp claim, __Host-latch_fgp cookie)\n")
	}
	if v.FirstParty {
		fmt.Fprintf(tw, "first party:\tyes (no consent page)\n")
	}
	if v.DPoPBound {
		fmt.Fprintf(tw, "dpop:\trequired (token requests need a DPoP proof)\n")
	}
	if v.RequirePAR {
		fmt.Fprintf(tw, "require PAR:\tyes (authorization requests are pushed first)\n")
	}
	if len(v.RedirectURIs) > 0 {
		fmt.Fprintf(tw, "redirect URIs:\t%s\n", strings.Join(v.RedirectURIs, " "))
	}
	if len(v.WebOrigins) > 0 {
		fmt.Fprintf(tw, "web origins (CORS):\t%s\n", strings.Join(v.WebOrigins, " "))
	}
	if len(v.AccessTokenEncryptionKey) > 0 {
		fmt.Fprintf(tw, "token encryption:\t%s\n", authority.DescribeEncryptionKey(v.AccessTokenEncryptionKey))
	}
	tw.Flush()
}

// exactArgs is cobra.ExactArgs with a usage error (exit 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("`latch %s` takes %d argument(s), got %d; see --help", cmd.CommandPath()[len("latch "):], n, len(args))
		}
		return nil
	}
}

// shortDuration writes d as a person would in help text: whole days as
// "14 days", otherwise time.Duration's form without trailing zero units
// ("10m", not "10m0s").
func shortDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

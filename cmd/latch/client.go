package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/server"
)

func newClientCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "register and manage OAuth clients (works while a server runs on the same data directory)"}
	cmd.AddCommand(clientCreateCmd(e), clientListCmd(e), clientGetCmd(e), clientDeleteCmd(e), clientRotateCmd(e))
	return cmd
}

func clientCreateCmd(e *env) *cobra.Command {
	var (
		c         common
		spec      server.ClientSpec
		ttl       time.Duration
		rttl      time.Duration
		jwksFile  string
		encryptTo string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "register a client; its secret is printed once and never stored",
		Example: `  latch client create --name billing --scope "read write" --audience https://api.example.com
  latch client create --format opaque --access-token-ttl 5m --audience api
  latch client create --audience api --encrypt-to api-enc.pub.jwk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("--jwks-file: %w", err)
				}
				spec.JWKS = b
			}
			if encryptTo != "" {
				b, err := os.ReadFile(encryptTo)
				if err != nil {
					return fmt.Errorf("--encrypt-to: %w", err)
				}
				spec.AccessTokenEncryptionKey = b
			}
			spec.AccessTokenTTL = int64(ttl / time.Second)
			spec.RefreshTokenTTL = int64(rttl / time.Second)
			return withStore(cmd, &c, func(db store) error {
				v, err := (&server.Clients{Store: db}).Create(cmd.Context(), spec)
				if err != nil {
					return err
				}
				for _, w := range v.Warnings {
					fmt.Fprintln(e.stderr, "latch: warning: "+w)
				}
				if c.json {
					return printJSON(e, v)
				}
				printClient(e, v)
				if v.Secret != "" {
					fmt.Fprintln(e.stdout, "\nThe secret is shown only now; store it safely. `latch client rotate-secret` replaces it.")
				}
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	f := cmd.Flags()
	f.StringVar(&spec.ID, "id", "", "client id (default: random)")
	f.StringVar(&spec.Name, "name", "", "human-readable name")
	f.StringVar(&spec.AuthMethod, "auth-method", "client_secret_basic", "client_secret_basic, client_secret_post, private_key_jwt or none")
	f.StringSliceVar(&spec.GrantTypes, "grant", []string{"client_credentials"}, "grant types (repeat or comma-separate)")
	f.StringVar(&spec.Scope, "scope", "", `space-separated scopes the client may request, e.g. "read write"`)
	f.StringSliceVar(&spec.Audiences, "audience", nil, "audiences the client may request; the first is the default (repeat or comma-separate)")
	f.StringSliceVar(&spec.RedirectURIs, "redirect-uri", nil, "redirect URIs (authorization code flow)")
	f.StringVar(&spec.AccessTokenFormat, "format", "jwt", "access token format: jwt or opaque")
	f.DurationVar(&ttl, "access-token-ttl", 0, "access token lifetime, e.g. 5m (default: the server's, 10m)")
	f.StringVar(&jwksFile, "jwks-file", "", "the client's public JWK Set, for private_key_jwt")
	f.StringVar(&encryptTo, "encrypt-to", "",
		"a file with the resource server's public EC JWK: JWT access tokens are encrypted to it (JWE, ECDH-ES+A256KW/A256GCM) so the client cannot read their claims")
	f.BoolVar(&spec.TokenFingerprint, "token-fingerprint", false,
		"bind JWT access tokens to a __Host-latch_fgp HttpOnly cookie set on the token response (fgp claim); for browser clients")
	f.BoolVar(&spec.FirstParty, "first-party", false, "the operator's own app: /oauth2/authorize skips the consent page")
	f.DurationVar(&rttl, "refresh-token-ttl", 0, "refresh token idle lifetime, e.g. 24h (default: the server's, 14 days); the family's absolute lifetime still applies")
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
				views := make([]*server.ClientView, 0, len(cs))
				for _, cl := range cs {
					views = append(views, server.ViewOf(cl))
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
					return printJSON(e, server.ViewOf(cl))
				}
				printClient(e, server.ViewOf(cl))
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
				v, err := (&server.Clients{Store: db}).RotateSecret(cmd.Context(), args[0])
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

func printClient(e *env, v *server.ClientView) {
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
	if v.TokenFingerprint {
		fmt.Fprintf(tw, "token fingerprint:\tyes (fgp claim, __Host-latch_fgp cookie)\n")
	}
	if v.FirstParty {
		fmt.Fprintf(tw, "first party:\tyes (no consent page)\n")
	}
	if len(v.RedirectURIs) > 0 {
		fmt.Fprintf(tw, "redirect URIs:\t%s\n", strings.Join(v.RedirectURIs, " "))
	}
	if len(v.AccessTokenEncryptionKey) > 0 {
		fmt.Fprintf(tw, "token encryption:\t%s\n", server.DescribeEncryptionKey(v.AccessTokenEncryptionKey))
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

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// newRevokeCmd is `latch revoke --subject USER`: logout everywhere from
// the command line, the same policy hook as the admin API's
// POST /admin/v1/users/{id}/logout and the "sign out everywhere" button.
func newRevokeCmd(e *env) *cobra.Command {
	var (
		c       common
		subject string
	)
	cmd := &cobra.Command{
		Use:   "revoke --subject USER",
		Short: "sign a user out everywhere: end every login session, revoke every refresh-token family and denylist the user's JWT access tokens",
		Long: `Signs a user out everywhere. Every login session of the user ends, every
refresh-token family is revoked (its opaque tokens deleted, its JWT access
tokens denylisted by (iss, jti) in the revocation feed that resource servers
and gateways follow). USER is a username or a user id. A running server picks
the change up at once for sessions and refresh tokens, and its revocation
feed publishes the denylisted JWTs within its poll interval. It reports what
it ended: sessions, families, tokens deleted and JWTs denylisted (--json too).

One token is revoked by value with latch token revoke.`,
		Example: `  latch revoke --subject alice`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return nil
			case len(args) == 1 && looksLikeToken(args[0]):
				return usagef("`latch revoke` signs a user out; to revoke one token, pass it on stdin: printf '%%s\\n' \"$TOKEN\" | latch token revoke")
			case len(args) == 1:
				return usagef("`latch revoke` takes the user as a flag: latch revoke --subject %s", args[0])
			}
			return usagef("`latch revoke` takes no arguments: latch revoke --subject USER")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if subject == "" {
				return usagef("--subject is required: the username or id of the user to sign out everywhere")
			}
			return withStore(cmd, &c, func(db store) error {
				// One time for the whole sign-out, so that its entries in
				// the revocation log can be counted after.
				now := time.Now().UTC().Truncate(time.Microsecond)
				v, err := (&registry.Users{Store: db, Now: func() time.Time { return now }}).LogoutEverywhere(cmd.Context(), subject)
				if err != nil {
					return err
				}
				opaque, jwts, err := server.RevocationsAt(cmd.Context(), db, now)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, struct {
						*registry.UserView
						OpaqueTokensDeleted int `json:"opaque_tokens_deleted"`
						JWTsDenylisted      int `json:"jwts_denylisted"`
					}{v, opaque, jwts})
				}
				fmt.Fprintf(e.stdout, "signed out everywhere: user %s (%s)\n", v.Username, v.ID)
				fmt.Fprintf(e.stdout, "  login sessions ended:         %d\n", deref(v.SessionsEnded))
				fmt.Fprintf(e.stdout, "  refresh-token families:       %d revoked\n", deref(v.FamiliesRevoked))
				fmt.Fprintf(e.stdout, "  refresh and opaque tokens:    %d deleted\n", opaque)
				fmt.Fprintf(e.stdout, "  JWT access tokens:            %d denylisted until they expire (resource servers following the revocation feed refuse them)\n", jwts)
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	cmd.Flags().StringVar(&subject, "subject", "", "username or user id")
	return cmd
}

// looksLikeToken reports whether s is an opaque latch token or a JWT (whose
// base64url header begins {" and so eyJ), not a username.
func looksLikeToken(s string) bool {
	return token.IsOpaque(s) || (strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") >= 2)
}

func deref(n *int) int {
	if n == nil {
		return 0
	}
	return *n
}

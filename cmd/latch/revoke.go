package main

import (
	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/server"
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
feed publishes the denylisted JWTs within its poll interval.`,
		Example: `  latch revoke --subject alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if subject == "" {
				return usagef("--subject is required: the username or id of the user to sign out everywhere")
			}
			return withStore(cmd, &c, func(db store) error {
				v, err := (&server.Users{Store: db}).LogoutEverywhere(cmd.Context(), subject)
				return printChange(e, &c, v, err, "signed out everywhere:")
			})
		},
	}
	addCommon(cmd, e, &c, true)
	cmd.Flags().StringVar(&subject, "subject", "", "username or user id")
	return cmd
}

package main

import (
	"github.com/spf13/pflag"

	"github.com/latch-auth/latch/server"
)

// oidcFlags configure what the login form accepts and the scope rule
// (server.Config.LoginName, RefuseUnknownScopes).
type oidcFlags struct {
	loginName           string
	refuseUnknownScopes bool
}

func addOIDCFlags(f *pflag.FlagSet, o *oidcFlags) {
	f.StringVar(&o.loginName, "login-name", string(server.DefaultLoginName),
		"what users sign in with: "+string(server.LoginUsernameOrEmail)+", "+string(server.LoginUsername)+" or "+string(server.LoginEmail))
	f.BoolVar(&o.refuseUnknownScopes, "refuse-unknown-scopes", false,
		"answer invalid_scope to a scope latch does not know instead of leaving it out of the grant (docs/scopes.md)")
}

// apply sets cfg; a --login-name latch does not know is refused by
// cfg.ValidateSettings, as "login name ...".
func (o *oidcFlags) apply(cfg *server.Config) {
	cfg.LoginName, cfg.RefuseUnknownScopes = server.LoginName(o.loginName), o.refuseUnknownScopes
}

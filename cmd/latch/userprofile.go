package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latch-auth/latch/registry"
)

// profileFlags are the email and OIDC profile claims of `latch user
// create` and `latch user set-profile`.
type profileFlags struct{ spec registry.ProfileSpec }

// profileFields maps each flag to the field it sets, in the order the help
// lists them.
func (p *profileFlags) fields() []struct {
	flag, help string
	v          *string
} {
	s := &p.spec
	return []struct {
		flag, help string
		v          *string
	}{
		{"email", "the user's email address, released under the email scope; unique, case-insensitively", &s.Email},
		{"name", "full name (OIDC name claim, profile scope)", &s.Name},
		{"given-name", "given or first name (given_name)", &s.GivenName},
		{"family-name", "surname or last name (family_name)", &s.FamilyName},
		{"nickname", "casual name (nickname)", &s.Nickname},
		{"picture", "https URL of the user's picture (picture)", &s.Picture},
		{"website", "https URL of the user's web page (website)", &s.Website},
		{"locale", "BCP 47 language tag, e.g. en-GB (locale)", &s.Locale},
		{"zoneinfo", "IANA time zone, e.g. Europe/Paris (zoneinfo)", &s.Zoneinfo},
	}
}

func (p *profileFlags) add(f *pflag.FlagSet) {
	for _, fl := range p.fields() {
		f.StringVar(fl.v, fl.flag, "", fl.help)
	}
	f.BoolVar(&p.spec.EmailVerified, "email-verified", false,
		"state that the email is the user's (released as email_verified); latch sends no mail to check it")
}

// merge returns cur with the flags that were given applied: a flag not
// given leaves its claim as it is; --name= (empty) clears it. Changing
// the email without --email-verified makes it unverified.
func (p *profileFlags) merge(f *pflag.FlagSet, cur registry.ProfileSpec) registry.ProfileSpec {
	next := &profileFlags{spec: cur}
	dst := next.fields()
	for i, fl := range p.fields() {
		if f.Changed(fl.flag) {
			*dst[i].v = *fl.v
		}
	}
	out := next.spec
	switch {
	case f.Changed("email-verified"):
		out.EmailVerified = p.spec.EmailVerified
	case f.Changed("email") && out.Email != cur.Email:
		out.EmailVerified = false
	}
	return out
}

func (p *profileFlags) changed(f *pflag.FlagSet) bool {
	for _, fl := range p.fields() {
		if f.Changed(fl.flag) {
			return true
		}
	}
	return f.Changed("email-verified")
}

func userSetProfileCmd(e *env) *cobra.Command {
	var (
		c  common
		pf profileFlags
	)
	cmd := &cobra.Command{
		Use:   "set-profile USER",
		Short: "set a user's email and OIDC profile claims (name, given name, ...); ends no session",
		Long: `Set a user's email and the OIDC profile claims released to applications
under the email and profile scopes (OpenID Connect Core §5.1, §5.4). A flag
not given leaves that claim as it is; an empty value (--name=) clears it.
Changing the email makes it unverified unless --email-verified is given too:
latch sends no mail, the operator vouches for the address.

The new claims appear in the next ID token and at /userinfo; no login
session ends, as claims grant nothing (roles and groups do: set-roles).`,
		Example: `  latch user set-profile alice --email alice@example.com --email-verified --name "Alice Liddell"
  latch user set-profile alice --picture=`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !pf.changed(cmd.Flags()) {
				return usagef("`latch user set-profile` needs at least one of --email, --email-verified, --name, ...; see --help")
			}
			return withStore(cmd, &c, func(db store) error {
				m := &registry.Users{Store: db}
				cur, err := m.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				spec := pf.merge(cmd.Flags(), registry.ProfileSpec{Email: cur.Email, EmailVerified: cur.EmailVerified, Profile: cur.Profile})
				v, err := m.SetProfile(cmd.Context(), cur.ID, spec)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, v)
				}
				printUser(e, v)
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	pf.add(cmd.Flags())
	return cmd
}

// printProfile writes the user's email and profile claims that are set.
func printProfile(tw *tabwriter.Writer, v *registry.UserView) {
	if v.Email != "" {
		verified := "unverified"
		if v.EmailVerified {
			verified = "verified"
		}
		fmt.Fprintf(tw, "email:\t%s (%s)\n", v.Email, verified)
	}
	for _, f := range []struct{ name, v string }{
		{"name", v.Name}, {"given name", v.GivenName}, {"family name", v.FamilyName}, {"nickname", v.Nickname},
		{"picture", v.Picture}, {"website", v.Website}, {"locale", v.Locale}, {"zoneinfo", v.Zoneinfo},
	} {
		if f.v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.v)
		}
	}
}

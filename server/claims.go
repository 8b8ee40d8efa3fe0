package server

import (
	"slices"

	"github.com/latch-auth/latch"
)

// identityClaims adds to m the OIDC Core §5.1 claims about u that scope
// releases (§5.4): profile gives preferred_username (the username, which
// the user types and may change; sub is the stable key), the profile
// claims the operator set and updated_at; email gives email and
// email_verified when the user has an email. ID tokens and /userinfo
// carry them; access tokens do not (see userClaims): RFC 9068 §2.2.3.1
// admits roles, groups and entitlements there, and a resource server that
// needs the user's name or address asks /userinfo with the token.
func identityClaims(m map[string]any, u *latch.User, scope []string) {
	if slices.Contains(scope, latch.ScopeProfile) {
		m["preferred_username"] = u.Username
		p := u.Profile
		for name, v := range map[string]string{
			"name": p.Name, "given_name": p.GivenName, "family_name": p.FamilyName, "nickname": p.Nickname,
			"picture": p.Picture, "website": p.Website, "locale": p.Locale, "zoneinfo": p.Zoneinfo,
		} {
			if v != "" {
				m[name] = v
			}
		}
		if !u.UpdatedAt.IsZero() {
			m["updated_at"] = u.UpdatedAt.Unix()
		}
	}
	if slices.Contains(scope, latch.ScopeEmail) && u.Email != "" {
		m["email"] = u.Email
		m["email_verified"] = u.EmailVerified
	}
}

// identityClaimNames are the claims identityClaims may set, for
// discovery's claims_supported.
var identityClaimNames = []string{"preferred_username", "name", "given_name", "family_name", "nickname",
	"picture", "website", "locale", "zoneinfo", "updated_at", "email", "email_verified"}

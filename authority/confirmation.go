package authority

import "github.com/latch-auth/latch/token"

// ClaimConfirmation is the confirmation claim of a JWT access token bound
// to a DPoP key (RFC 7800 §3.1): {"jkt": thumbprint} (RFC 9449 §6.1).
const ClaimConfirmation = "cnf"

// boundKey returns the cnf.jkt of verified JWT claims, "" when the token is
// not bound.
func boundKey(c *token.Claims) string {
	m, ok := c.Extra[ClaimConfirmation].(map[string]any)
	if !ok {
		return ""
	}
	jkt, _ := m["jkt"].(string)
	return jkt
}

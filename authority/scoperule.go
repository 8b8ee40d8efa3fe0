package authority

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// latchScopes are latch's own scopes: known whether or not a client is
// registered for them.
var latchScopes = []string{latch.ScopeAdmin, latch.ScopeIntrospect}

// GrantScope applies latch's scope rule (docs/scopes.md) to the scope a
// client requests from its own registration (authorization and client
// credentials requests, the password grant), and returns what is granted,
// in the order requested:
//
//   - a scope registered for the client is granted;
//   - an OIDC scope (latch.OIDCScopes) is granted to a client registered for
//     openid;
//   - a scope latch knows (an OIDC scope, latch:admin, latch:introspect, or a scope
//     registered for any client) but not for this client is refused with
//     invalid_scope: asking for it is a mistake in the client's
//     configuration or an attempt at more than it was given;
//   - any other scope is dropped, as OIDC Core §3.1.2.1 says a server
//     SHOULD ignore scopes it does not understand, and RFC 6749 §3.3 lets
//     it grant less than asked, saying so in the response's scope; with
//     RefuseUnknownScopes it is refused instead.
//
// A request whose every scope was dropped is refused: there would be
// nothing to grant, and a token response without scope would claim the
// request was granted in full (RFC 6749 §5.1).
func (m *Tokens) GrantScope(ctx context.Context, c *latch.Client, requested []string) ([]string, error) {
	granted := make([]string, 0, len(requested))
	for _, sc := range requested {
		if slices.Contains(c.Scopes, sc) || slices.Contains(latch.OIDCScopes, sc) && slices.Contains(c.Scopes, latch.ScopeOpenID) {
			granted = append(granted, sc)
			continue
		}
		known := slices.Contains(latch.OIDCScopes, sc) || slices.Contains(latchScopes, sc)
		if !known {
			var err error
			if known, err = m.scopeRegistered(ctx, sc); err != nil {
				return nil, err
			}
		}
		switch {
		case known:
			return nil, oauth.BadRequest(oauth.ErrInvalidScope, "scope "+oauth.Quote(sc)+" is not registered for the client")
		case m.RefuseUnknownScopes:
			return nil, oauth.BadRequest(oauth.ErrInvalidScope, "scope "+oauth.Quote(sc)+" is not known to this server")
		}
	}
	if len(granted) == 0 && len(requested) > 0 {
		return nil, oauth.BadRequest(oauth.ErrInvalidScope, "none of the requested scopes is known to this server")
	}
	return granted, nil
}

// knownScopes caches what the registered clients add up to: the union of
// their scopes, and whether any may use the password grant.
type knownScopes struct {
	mu       sync.Mutex
	reg      *Registrations
	loadedAt time.Time
}

// Registrations sums up the registered clients.
type Registrations struct {
	scopes map[string]bool
	// Password: some client may use the password grant.
	Password bool
}

// scopeRegistered reports whether some client is registered for sc. The
// union of all clients' scopes is read from the store at most once per
// ScopeCacheTTL (the client cache's lifetime, so a client registered
// elsewhere counts as soon as it could be used), and only when a request
// names a scope that is neither its client's nor an OIDC scope.
func (m *Tokens) scopeRegistered(ctx context.Context, sc string) (bool, error) {
	reg, err := m.Registrations(ctx)
	if err != nil {
		return false, err
	}
	return reg.scopes[sc], nil
}

// Registrations reads the summary of the registered clients, cached for
// ScopeCacheTTL.
func (m *Tokens) Registrations(ctx context.Context) (*Registrations, error) {
	k := &m.known
	k.mu.Lock()
	defer k.mu.Unlock()
	now := m.now()
	if k.reg == nil || m.ScopeCacheTTL <= 0 || now.Sub(k.loadedAt) >= m.ScopeCacheTTL || now.Before(k.loadedAt) {
		cs, err := m.Store.Clients(ctx)
		if err != nil {
			return nil, err
		}
		reg := &Registrations{scopes: make(map[string]bool)}
		for _, c := range cs {
			for _, s := range c.Scopes {
				reg.scopes[s] = true
			}
			reg.Password = reg.Password || c.AllowsGrant(latch.GrantPassword)
		}
		k.reg, k.loadedAt = reg, now
	}
	return k.reg, nil
}

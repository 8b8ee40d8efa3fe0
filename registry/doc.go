// Package registry is latch's client and user registry: the rules by which
// clients are registered, updated and given new secrets (Clients, with
// ClientSpec, ClientPatch and the ClientView the CLI and the admin API
// print), the short-lived client cache a server reads through
// (ClientCache), and the users with their password policy and the sessions
// and grants a credential change ends (Users).
//
// The CLI and the server's admin API both go through it, so a client or a
// user created or changed either way obeys one implementation.
//
// It owns no HTTP. It may import the root package, oauth (wire errors),
// token, password, authority (the access-token encryption keys it checks)
// and loginsession (ending sessions); never server or a storage backend.
package registry

// Package bff is latch's Backend-for-Frontend for single-page apps: the
// pattern OWASP and the IETF's "OAuth 2.0 for Browser-Based Applications"
// recommend, in which the browser never holds a token.
//
// The BFF is a confidential OAuth client that shares the app's origin. It
// runs the authorization code flow with PKCE (RFC 7636, S256) server-side,
// keeps the access, refresh and ID tokens in its Store, sealed, and gives
// the browser one cookie, __Host-latch_bff (Secure, HttpOnly,
// SameSite=Strict, Path=/), holding 256 random bits that name the session.
// The SPA calls /api/* on its own origin; the BFF forwards the call to the
// upstream API with the user's access token, which it refreshes shortly
// before expiry.
//
// # What it owns
//
//   - GET /bff/login?return_to=/path: a pending login (nonce, PKCE
//     verifier, return_to), sealed into a __Host- pre-login cookie named
//     after the state (nothing is stored before the callback), and the
//     redirect to the authorization endpoint.
//   - GET /bff/callback: the state check (its cookie, in this browser,
//     cleared at once), the code exchange, the ID token check (signature,
//     typ, iss, aud, azp, exp, nonce), a new session (a new cookie value
//     at every login) and the redirect to return_to, a local path only.
//   - GET /bff/user: the user's non-secret claims; never a token.
//   - POST /bff/logout: RFC 7009 revocation of the refresh token (latch
//     revokes its whole family), deletion of the session, the cookie
//     cleared.
//   - /api/*: the reverse proxy, with the single-flight refresh (one
//     refresh per session at a time; every request waiting for it shares
//     its result, and the new tokens are stored before any is released).
//   - CSRF: every state-changing request (any method but GET, HEAD,
//     OPTIONS) must carry X-Latch-CSRF: 1 and come from the app's origin
//     (Sec-Fetch-Site: same-origin, or Origin equal to it).
//   - The Store contract and its two implementations, SQLite and Redis,
//     and the sealing of every record with AES-256-GCM.
//   - With Config.DPoP, the binding of the tokens it holds to a P-256 key
//     of its own (RFC 9449): the key, created once and kept sealed in the
//     Store for every node, a proof at the token endpoint and on every
//     API request, and the servers' nonces (one retry on use_dpop_nonce).
//
// # What it does not own
//
// The authorization server (package server), the verification of the
// access token (the upstream does it, e.g. with package verify), and the
// revocation feed: cmd/latch wires verify.FollowRevocations into
// Config.IsRevoked and Config.Ready, so that a session revoked at the
// server ("sign out everywhere", reuse detection, an admin) answers 401
// session_revoked at its next API call. TLS is terminated in front of it.
//
// # Answers
//
// Errors are JSON {"error": CODE, "error_description": TEXT} with
// Cache-Control: no-store. The codes are the Code* constants:
// login_required and session_revoked (401, send the user to /bff/login),
// csrf_check_failed (403), login_failed and invalid_request (400),
// temporarily_unavailable (503, retry), upstream_unreachable (502).
// Answers of the upstream pass through unchanged, except that it cannot
// set the BFF's own cookies.
//
// docs/bff.md describes the flows, the storage and the limits.
package bff

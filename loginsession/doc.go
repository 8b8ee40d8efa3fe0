// Package loginsession owns latch's login sessions apart from their
// cookie: the session ID (256 random bits, only its SHA-256 stored), the
// idle and absolute timeouts and how often the idle expiry moves, ending a
// session together with the grants it approved, and the CSRF tokens
// derived from the session ID or the pre-session login cookie (OWASP CSRF
// Prevention Cheat Sheet, synchronizer token pattern).
//
// Reading and writing cookies, the Origin checks and the pages are the
// server's. It may import only the root package.
package loginsession

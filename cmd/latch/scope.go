package main

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/latch-auth/latch/oauth"
)

// scopeList is the value of every --scope flag: scopes separated by
// spaces, commas or both ("read write", read,write), and the flag may be
// repeated. RFC 6749 §3.3 lets a scope token hold a comma, but no scope
// latch or its users define does, and two syntaxes for one list (one of
// which silently registered "read,write" as a single scope) are a trap:
// on the command line, a comma always separates. The admin API's JSON
// takes the RFC's space-delimited string as it is.
type scopeList struct{ scopes []string }

func (s *scopeList) Set(v string) error {
	for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if _, err := oauth.SplitScope(tok); err != nil {
			return fmt.Errorf("scope %q: %s", tok, err.Description)
		}
		if !slices.Contains(s.scopes, tok) {
			s.scopes = append(s.scopes, tok)
		}
	}
	return nil
}

// String is the scopes as RFC 6749 §3.3 writes them: space-delimited.
func (s *scopeList) String() string { return strings.Join(s.scopes, " ") }

func (s *scopeList) Type() string { return "scopes" }

// scopeFlagHelp is the help of a --scope flag that sets what.
func scopeFlagHelp(what string) string {
	return what + `, separated by spaces or commas ("read write" or read,write); repeatable`
}

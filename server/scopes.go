package server

import "github.com/latch-auth/latch"

// scopeDescriptions say, on the consent page, what each scope latch knows
// lets an application do, in the user's words rather than the protocol's.
// A scope not listed here is shown by its name, marked as not described.
var scopeDescriptions = map[string]string{
	latch.ScopeOpenID:        "Know who you are on this server: your user ID, roles and groups",
	latch.ScopeProfile:       "See your username and the name and profile details this server keeps about you",
	"email":                  "See your email address",
	latch.ScopeOfflineAccess: "Keep its access when you are not using it, without asking you again",
	"read":                   "Read your data",
	"write":                  "Create, change and delete your data",
	latch.ScopeAdmin:         "Administer this server: its applications, users and signing keys",
}

// scopeView is one scope as the consent page lists it.
type scopeView struct {
	Name, Text string
	Known      bool
}

func describeScopes(scopes []string) []scopeView {
	out := make([]scopeView, 0, len(scopes))
	for _, sc := range scopes {
		text, ok := scopeDescriptions[sc]
		if !ok {
			text = "Not described by this server: ask the application what it allows"
		}
		out = append(out, scopeView{Name: sc, Text: text, Known: ok})
	}
	return out
}

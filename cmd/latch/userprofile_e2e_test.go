package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUserCLI_EmailAndProfile(t *testing.T) {
	dir := migratedDir(t)
	d := []string{"--data-dir", dir}
	const pw = "correct horse battery staple"
	type profile struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
		GivenName     string `json:"given_name"`
		Zoneinfo      string `json:"zoneinfo"`
		Picture       string `json:"picture"`
	}
	decode := func(out string) profile {
		t.Helper()
		var p profile
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("user JSON %q: %v", out, err)
		}
		return p
	}

	out, errOut, code := runCLIStdin(t, pw+"\n", append([]string{"user", "create", "alice", "--email", "Alice@Example.com",
		"--email-verified", "--name", "Alice Liddell", "--given-name", "Alice", "--zoneinfo", "Europe/London", "--json"}, d...)...)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	if p := decode(out); p != (profile{Email: "Alice@Example.com", EmailVerified: true, Name: "Alice Liddell", GivenName: "Alice", Zoneinfo: "Europe/London"}) {
		t.Fatalf("created %+v", p)
	}
	if out := runCLI(t, append([]string{"user", "get", "ALICE@example.com"}, d...)...); !strings.Contains(out, "Alice@Example.com (verified)") || !strings.Contains(out, "Alice Liddell") {
		t.Errorf("get by email:\n%s", out)
	}

	// Only the flags given change; a new email is unverified unless said.
	p := decode(runCLI(t, append([]string{"user", "set-profile", "alice", "--email", "alice@example.org", "--picture", "https://img.example/a.png", "--given-name=", "--json"}, d...)...))
	if p != (profile{Email: "alice@example.org", Name: "Alice Liddell", Zoneinfo: "Europe/London", Picture: "https://img.example/a.png"}) {
		t.Errorf("set-profile: %+v", p)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "set-profile", "alice"}, "needs at least one of"},
		{[]string{"user", "set-profile", "alice", "--email", "<a@example.com>"}, "plain address"},
		{[]string{"user", "set-profile", "alice", "--website", "ftp://x.example"}, "http or https"},
		{[]string{"user", "set-profile", "nobody", "--name", "X"}, "no user"},
	} {
		_, errOut, code := runCLIStdin(t, "", append(tc.args, d...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	_, errOut, code = runCLIStdin(t, pw+"\n", append([]string{"user", "create", "bob", "--email", "ALICE@example.ORG"}, d...)...)
	if code == 0 || !strings.Contains(errOut, "another user's") {
		t.Errorf("create with alice's email: exit %d: %s", code, errOut)
	}
}

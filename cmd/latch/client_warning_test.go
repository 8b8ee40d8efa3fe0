package main

import (
	"strings"
	"testing"
)

// TestCLI_ClientCreate_InteractiveAdminClient_WarnsOnStderr: `latch client
// create` of an authorization_code client with latch:admin succeeds and
// prints a warning naming the role latch:admin on standard error, leaving
// standard output (the client, or its JSON) as it is; a client_credentials
// admin client gets no warning.
func TestCLI_ClientCreate_InteractiveAdminClient_WarnsOnStderr(t *testing.T) {
	dir := migratedDir(t)
	out, errOut, code := runCLICode(t, nil, "client", "create", "--data-dir", dir, "--json", "--grant", "authorization_code",
		"--redirect-uri", "https://console.example/cb", "--scope", "openid latch:admin", "--audience", "urn:latch:admin")
	if code != 0 || !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "role latch:admin") || !strings.HasPrefix(out, "{") {
		t.Fatalf("interactive latch:admin client: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	_, errOut, code = runCLICode(t, nil, "client", "create", "--data-dir", dir, "--scope", "latch:admin", "--audience", "urn:latch:admin")
	if code != 0 || errOut != "" {
		t.Fatalf("client_credentials latch:admin client: exit %d, stderr %q", code, errOut)
	}
}

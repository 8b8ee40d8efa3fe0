package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// interopNodeDir holds the npm interop clients (interop/node), relative to
// this package's directory, where go test runs.
const interopNodeDir = "../../interop/node"

// TestInterop_NodeJoseAndOpenIDClient runs interop/node/check.mjs against a
// live `latch serve --dev`: openid-client (discovery via both well-known
// documents, client_credentials, RFC 7662 introspection, RFC 7009
// revocation, for a JWT client with client_secret_basic and an opaque
// client with client_secret_post) and jose (jwtVerify of the access token
// against the remote JWKS; altered and alg=none tokens refused).
//
// Without node or `npm ci` in interop/node it skips, unless
// LATCH_TEST_NODE=1 (as in CI), where that is a failure.
func TestInterop_NodeJoseAndOpenIDClient(t *testing.T) {
	required := os.Getenv("LATCH_TEST_NODE") == "1"
	unavailable := func(format string, args ...any) {
		t.Helper()
		if required {
			t.Fatalf("LATCH_TEST_NODE=1 but "+format, args...)
		}
		t.Skipf(format+" (set LATCH_TEST_NODE=1 to make this a failure)", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH: %v", err)
	}
	dir, err := filepath.Abs(interopNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"jose", "openid-client"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			unavailable("npm package %s is not installed in %s (run `npm ci` there): %v", pkg, dir, err)
		}
	}

	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	devSecret := p.DevSecret(t)
	opaque := createClient(t, dataDir, "--format", "opaque", "--audience", "api", "--scope", "read",
		"--auth-method", "client_secret_post")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(),
		"ISSUER="+p.Issuer,
		"CLIENT_ID=dev",
		"CLIENT_SECRET="+devSecret,
		"JWT_AUDIENCE=dev-api",
		"OPAQUE_CLIENT_ID="+opaque.ID,
		"OPAQUE_CLIENT_SECRET="+opaque.Secret,
		"OPAQUE_CLIENT_AUTH_METHOD=client_secret_post",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node check.mjs did not finish within 60s:\n%s\nlatch stderr:\n%s", &out, p.Stderr)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node check.mjs: exit %d\n%s\nlatch stderr:\n%s", ee.ExitCode(), &out, p.Stderr)
		}
		t.Fatalf("node check.mjs: %v\n%s", err, &out)
	}
	t.Logf("node check.mjs:\n%s", &out)
}

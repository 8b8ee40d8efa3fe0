package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestInterop_NodeJoseDecryptsEncryptedToken runs interop/node/check-jwe.mjs:
// jose (npm) decrypts an encrypted access token from the real server with
// compactDecrypt, the algorithms pinned to ECDH-ES+A256KW/A256GCM, verifies
// the inner JWS against the live JWKS with jwtVerify, and refuses a wrong
// key. It skips like TestInterop_NodeJoseAndOpenIDClient without node or
// `npm ci`, unless LATCH_TEST_NODE=1.
func TestInterop_NodeJoseDecryptsEncryptedToken(t *testing.T) {
	required := os.Getenv("LATCH_TEST_NODE") == "1"
	node, err := exec.LookPath("node")
	dir, _ := filepath.Abs(interopNodeDir)
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "jose", "package.json"))
	}
	if err != nil {
		if required {
			t.Fatalf("LATCH_TEST_NODE=1 but node or interop/node's jose is missing (run `npm ci` there): %v", err)
		}
		t.Skipf("node or interop/node's jose is missing (run `npm ci` there; LATCH_TEST_NODE=1 makes this a failure): %v", err)
	}

	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privJWK := jose.JSONWebKey{Key: priv, KeyID: "api-enc-1", Use: "enc", Algorithm: string(jose.ECDH_ES_A256KW)}
	pubFile := filepath.Join(dataDir, "api-enc.pub.jwk")
	writeJSON(t, pubFile, privJWK.Public())
	c := createClient(t, dataDir, "--audience", "api", "--scope", "read", "--encrypt-to", pubFile)
	tok := issueToken(t, p, c, nil)
	privJSON, err := json.Marshal(privJWK)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check-jwe.mjs")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "ISSUER="+p.Issuer, "AUDIENCE=api", "TOKEN="+tok, "CLIENT_ID="+c.ID, "PRIVATE_JWK="+string(privJSON))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node check-jwe.mjs did not finish within 60s:\n%s", &out)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node check-jwe.mjs: exit %d\n%s\nlatch stderr:\n%s", ee.ExitCode(), &out, p.Stderr)
		}
		t.Fatalf("node check-jwe.mjs: %v\n%s", err, &out)
	}
	t.Logf("node check-jwe.mjs:\n%s", &out)
}

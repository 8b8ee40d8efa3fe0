package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch/verify"
)

// TestEncryptedTokens_E2E: `latch client create --encrypt-to` with a
// resource server's public JWK; the real server issues that client nested
// JWTs which package verify, holding the private key, decrypts and
// verifies with the same claims as introspection would have given; without
// the key, or with RequireEncryption against a plain token, it refuses.
func TestEncryptedTokens_E2E(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privJWK := jose.JSONWebKey{Key: priv, KeyID: "api-enc-1", Use: "enc", Algorithm: string(jose.ECDH_ES_A256KW)}
	pubFile := filepath.Join(dir, "api-enc.pub.jwk")
	writeJSON(t, pubFile, privJWK.Public())
	privFile := filepath.Join(dir, "api-enc.jwk")
	writeJSON(t, privFile, privJWK)

	// The private key is refused, with a message that says why, and
	// nothing is created.
	out, errOut, code := runCLICode(t, nil, "client", "create", "--data-dir", dir, "--id", "leaky", "--audience", "api", "--encrypt-to", privFile)
	if code == 0 || !strings.Contains(errOut, "private key material") {
		t.Fatalf("--encrypt-to a private key: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := runCLICode(t, nil, "client", "get", "--data-dir", dir, "leaky"); code == 0 {
		t.Fatal("a client was created with a private key")
	}
	if _, errOut, code := runCLICode(t, nil, "client", "create", "--data-dir", dir, "--encrypt-to", filepath.Join(dir, "missing")); code == 0 || !strings.Contains(errOut, "--encrypt-to") {
		t.Fatalf("--encrypt-to a missing file: exit %d %s", code, errOut)
	}

	// A fixed id: a random one may begin with "-" and read as a flag below.
	c := createClient(t, dir, "--id", "enc-app", "--audience", "api", "--scope", "read", "--encrypt-to", pubFile)
	if shown := runCLI(t, "client", "get", "--data-dir", dir, c.ID); !strings.Contains(shown, "ECDH-ES+A256KW/A256GCM to P-256 key api-enc-1") {
		t.Fatalf("client get does not show the encryption:\n%s", shown)
	}
	tok := issueToken(t, p, c, url.Values{"scope": {"read"}})
	if strings.Count(tok, ".") != 4 {
		t.Fatalf("token %q is not a compact JWE", tok)
	}

	ctx := context.Background()
	v, err := verify.New(ctx, verify.Config{Issuer: p.Issuer, Audience: "api", InsecureAllowHTTP: true,
		DecryptionKeys: []jose.JSONWebKey{privJWK}, RequireEncryption: true})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("verify the encrypted token: %v", err)
	}
	if claims.Subject != c.ID || claims.ClientID != c.ID || claims.Scope != "read" || !claims.Audience.Contains("api") || claims.Issuer != p.Issuer {
		t.Fatalf("claims %+v", claims.Claims)
	}
	// A plain token of another client for the same API is refused here.
	plainClient := createClient(t, dir, "--audience", "api", "--scope", "read")
	if _, err := v.Verify(ctx, issueToken(t, p, plainClient, nil)); !errors.Is(err, verify.ErrNotEncrypted) {
		t.Fatalf("plain token with RequireEncryption: %v", err)
	}
	// A resource server without the key cannot use the token.
	nokey, err := verify.New(ctx, verify.Config{Issuer: p.Issuer, Audience: "api", InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nokey.Verify(ctx, tok); !errors.Is(err, verify.ErrDecrypt) {
		t.Fatalf("encrypted token without a key: %v", err)
	}
	// The server cannot read it: inactive to introspection.
	if m := introspect(t, p, dev, tok); len(m) != 1 || m["active"] != false {
		t.Fatalf("introspection of an encrypted token: %v", m)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

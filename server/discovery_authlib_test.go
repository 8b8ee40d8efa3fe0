package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// authlibPython finds a python3 that can import authlib (Debian's
// python3-authlib, which .ci/run installs), or "".
func authlibPython() string {
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import authlib").Run() == nil {
			return p
		}
	}
	return ""
}

// authlibValidate is run by python3: it validates the document in the
// file argv[1] with authlib's RFC 8414 and OIDC Discovery validators.
const authlibValidate = `
import json, sys
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
doc = json.load(open(sys.argv[1]))
AuthorizationServerMetadata(doc).validate()
OpenIDProviderMetadata(doc).validate()
print("valid")
`

// TestDiscovery_ValidByAuthlib has the metadata checked by a validator we
// did not write: authlib's (Python), which rejects a document that lists
// private_key_jwt for revocation or introspection without their signing
// algorithms (RFC 8414 §2), or an OIDC one without RS256 (Discovery §3).
func TestDiscovery_ValidByAuthlib(t *testing.T) {
	py := authlibPython()
	if py == "" {
		t.Skip("python3 with authlib not found: apt-get install python3-authlib (.ci/run does)")
	}
	e := rsaEnv(t)
	run := func(doc map[string]any) (string, error) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "metadata.json")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(py, "-c", authlibValidate, f).CombinedOutput()
		return string(out), err
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		var doc map[string]any
		mustJSON(t, e.get(path, nil).Body.Bytes(), &doc)
		if out, err := run(doc); err != nil || !strings.Contains(out, "valid") {
			t.Fatalf("authlib refuses %s: %v\n%s", path, err, out)
		}
	}
	// The validator can fail: without those members, it does.
	var doc map[string]any
	mustJSON(t, e.get("/.well-known/openid-configuration", nil).Body.Bytes(), &doc)
	for _, drop := range []string{"revocation_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported"} {
		broken := map[string]any{}
		for k, v := range doc {
			if k != drop {
				broken[k] = v
			}
		}
		if out, err := run(broken); err == nil {
			t.Errorf("authlib accepts the document without %s:\n%s", drop, out)
		}
	}
	doc["id_token_signing_alg_values_supported"] = []string{"ES256"}
	if out, err := run(doc); err == nil {
		t.Errorf("authlib accepts ID tokens without RS256:\n%s", out)
	}
}

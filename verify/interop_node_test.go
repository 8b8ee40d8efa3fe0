package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
)

// TestInterop_NodeJoseDPoPProof_IsAccepted runs interop/node/dpop-proof.mjs:
// jose (npm) makes a key pair per algorithm (ES256, EdDSA, PS256), its
// RFC 7638 thumbprint, and a DPoP proof for a token bound to that
// thumbprint (its htu with a query, which is ignored); the middleware
// accepts each proof, which also shows both compute the same thumbprint,
// and refuses it replayed. It skips without node or `npm
// ci` in interop/node, unless LATCH_TEST_NODE=1.
func TestInterop_NodeJoseDPoPProof_IsAccepted(t *testing.T) {
	required := os.Getenv("LATCH_TEST_NODE") == "1"
	node, err := exec.LookPath("node")
	dir, _ := filepath.Abs(filepath.Join("..", "interop", "node"))
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "jose", "package.json"))
	}
	if err != nil {
		if required {
			t.Fatalf("LATCH_TEST_NODE=1 but node or interop/node's jose is missing (run `npm ci` there): %v", err)
		}
		t.Skipf("node or interop/node's jose is missing (run `npm ci` there; LATCH_TEST_NODE=1 makes this a failure): %v", err)
	}
	// jose stamps iat with the real clock.
	s := newDPoPSetup(t, func(c *Config, d *dpop.Config) {
		c.Algorithms = []latch.Algorithm{latch.ES256}
		d.Now = time.Now
	})
	h := s.v.Middleware(echoClaims)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "dpop-proof.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HTM=GET", "HTU="+resourceURL+"?q=from-jose")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("dpop-proof.mjs ended early: %v", lines.Err())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("dpop-proof.mjs: %q: %v", lines.Text(), err)
		}
	}
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		var key struct{ Alg, JKT, Jose string }
		next(&key)
		if key.Alg != alg || key.JKT == "" {
			t.Fatalf("key line %+v, want %s", key, alg)
		}
		tok := s.boundToken(t, key.JKT)
		io.WriteString(stdin, tok+"\n")
		var p struct{ Alg, Proof string }
		next(&p)
		// Accepted by the middleware: the token is bound to jose's
		// thumbprint, so this also proves both compute the same jkt.
		w := serveWith(h, dpopRequest(tok, p.Proof))
		if w.Code != http.StatusOK || w.Body.String() != "user-1" {
			t.Fatalf("%s proof from jose %s: %d %s", alg, key.Jose, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		w = serveWith(h, dpopRequest(tok, p.Proof))
		wantChallenge(t, w, http.StatusUnauthorized, "DPoP", "invalid_dpop_proof", "used before")
		t.Logf("jose %s: %s proof accepted, jkt %s", key.Jose, alg, key.JKT)
	}
}

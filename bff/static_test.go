package bff

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// The app's static files are served, but no directory listing, no
// dotfile or dot-directory, and nothing a symbolic link points to
// outside the directory.
func TestStaticFiles_NoDirectoryListingNoDotfiles(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for name, body := range map[string]string{
		"index.html": "app", "app.js": "js", ".env": "SECRET=1", ".git/config": "[core]",
		"assets/x.css": "css", "sub/index.html": "sub", ".well-known/security.txt": "contact",
		".well-known/.hidden": "no", "assets/.DS_Store": "no",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	h, err := StaticFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", 200}, {"/app.js", 200}, {"/assets/x.css", 200}, {"/sub/", 200}, {"/.well-known/security.txt", 200},
		{"/assets/", 404}, {"/assets", 404}, {"/.env", 404}, {"/.git/config", 404}, {"/.git/", 404},
		{"/assets/.DS_Store", 404}, {"/.well-known/.hidden", 404}, {"/%2eenv", 404}, {"/escape.txt", 404},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "https://app.test"+tc.path, nil))
		if w.Code != tc.want {
			t.Errorf("GET %s: %d %q, want %d", tc.path, w.Code, w.Body.String(), tc.want)
		}
	}
	if _, err := StaticFiles(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory was accepted")
	}
}

// Over https every answer of the BFF carries Strict-Transport-Security.
func TestHSTS_EveryBFFResponse(t *testing.T) {
	e := newUnitEnv(t)
	for _, p := range []string{"/bff/user", "/bff/login", "/bff/nope", "/api/x", "/"} {
		w := e.do("GET", p, "", nil, nil)
		if got := w.Header().Get("Strict-Transport-Security"); got != HSTSHeader {
			t.Errorf("GET %s (%d): Strict-Transport-Security %q, want %q", p, w.Code, got, HSTSHeader)
		}
	}
}

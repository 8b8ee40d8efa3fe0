package latch_test

import (
	"bytes"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRepository_NeedsNothingOutsideItself: a user's clone has only the
// repository, so no test, script or doc may point at a directory beside it
// (test vectors are copied into testdata/ with their licences instead).
func TestRepository_NeedsNothingOutsideItself(t *testing.T) {
	// Built from parts so this file does not find itself.
	needles := [][]byte{[]byte(".." + "/shared"), []byte("DESIGN" + ".md")}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", ".latch":
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".go"), strings.HasSuffix(path, ".md"),
			strings.HasSuffix(path, ".sh"), strings.HasSuffix(path, ".yaml"),
			strings.HasSuffix(path, ".json") && !strings.Contains(path, "testdata"),
			path == filepath.Join(".ci", "run"), strings.HasPrefix(d.Name(), "Containerfile"):
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if i := bytes.Index(b, n); i >= 0 {
				line := 1 + bytes.Count(b[:i], []byte("\n"))
				t.Errorf("%s:%d refers to %q, which is outside the repository: copy what it needs into the repo", path, line, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestImports_DependenciesPointInward enforces the layering the packages'
// docs promise, from the import lines of every non-test file: server (the
// HTTP layer) is imported only by cmd/latch; nothing below it imports it;
// the application services (authority, registry, loginsession, revfeed)
// import only what their doc.go allows; the backends import no service;
// verify, the library resource servers embed, stays small; the root
// package imports nothing of ours; throttle imports only the standard
// library.
func TestImports_DependenciesPointInward(t *testing.T) {
	const mod = "github.com/latch-auth/latch"
	imports := map[string]map[string]bool{} // package dir -> imported packages of this module
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", ".latch":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if imports[dir] == nil {
			imports[dir] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if p == mod || strings.HasPrefix(p, mod+"/") {
				imports[dir][strings.TrimPrefix(strings.TrimPrefix(p, mod), "/")] = true
			}
			if dir == "throttle" && strings.Contains(p, ".") {
				t.Errorf("throttle imports %s: it may import only the standard library", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports["server"]) == 0 || len(imports["verify"]) == 0 {
		t.Fatalf("no imports read for server or verify: %v", imports)
	}
	verifyMay := map[string]bool{"": true, "token": true, "oauth": true, "dpop": true, "internal/tokencache": true}
	// What each application service and backend may import of this
	// module, as its package doc says.
	allowed := map[string][]string{
		"authority":    {"", "internal/tokencache", "keys", "oauth", "token"},
		"registry":     {"", "authority", "loginsession", "oauth", "password", "token"},
		"loginsession": {""},
		"revfeed":      {""},
		"sqlite":       {"", "internal/sqlmigrate"},
		"postgres":     {"", "internal/sqlmigrate"},
		"redis":        {"", "throttle"},
	}
	for dir := range allowed {
		if len(imports[dir]) == 0 {
			t.Errorf("no imports read for %s: was it moved? update this test", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil && dir != "sqlite" && dir != "postgres" && dir != "redis" {
			t.Errorf("%s has no doc.go saying what it owns and what it may import", dir)
		}
	}
	for dir, ims := range imports {
		if may, ok := allowed[dir]; ok {
			for im := range ims {
				if !slices.Contains(may, im) {
					t.Errorf("%s imports %s: it may import only %q (see its package doc)", dir, im, may)
				}
			}
		}
		if ims["server"] && dir != "cmd/latch" {
			t.Errorf("%s imports server: only cmd/latch may (server is the HTTP layer; share code through a package below it)", dir)
		}
		for im := range ims {
			if dir == "." && im != "" {
				t.Errorf("the root package imports %s: it holds the vocabulary and imports nothing of ours", im)
			}
			if dir == "verify" && !verifyMay[im] {
				t.Errorf("verify imports %s: resource servers embed it, so it imports only latch, token, oauth, dpop and internal/tokencache", im)
			}
		}
	}
}

package latch_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
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

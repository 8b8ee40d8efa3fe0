package bff

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// StaticFiles serves the single-page app's files from dir, for Config.SPA.
// Unlike a bare http.FileServer it lists no directory (one without an
// index.html is 404: a listing shows files nobody linked to), serves no
// dotfile or dot-directory (.env, .git/, editor backups: 404), apart from
// RFC 8615's /.well-known/, and follows no symbolic link out of dir
// (os.Root).
func StaticFiles(dir string) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("bff: static files: %w", err)
	}
	return http.FileServer(staticFS{http.FS(root.FS())}), nil
}

type staticFS struct{ fs http.FileSystem }

func (s staticFS) Open(name string) (http.File, error) {
	for i, seg := range strings.Split(strings.TrimPrefix(name, "/"), "/") {
		if strings.HasPrefix(seg, ".") && !(i == 0 && seg == ".well-known") {
			return nil, fs.ErrNotExist
		}
	}
	f, err := s.fs.Open(name)
	if err != nil {
		// Includes a link out of dir, which os.Root refuses: not found
		// (a 404), not a server error.
		return nil, fs.ErrNotExist
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		// http.FileServer serves a directory's index.html, and lists it
		// when there is none: then it is not found.
		idx, err := s.fs.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			return nil, fs.ErrNotExist
		}
		idx.Close()
	}
	return f, nil
}

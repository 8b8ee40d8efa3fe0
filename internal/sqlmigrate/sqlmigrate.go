// Package sqlmigrate reads the embedded schema migrations of the SQL
// store backends (sqlite, postgres): files named NNNN_description.sql,
// numbered from 1 without gaps. Applying them is each backend's business:
// their transactions, locks and version tables differ.
package sqlmigrate

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one migration file.
type Migration struct {
	Version int
	Name    string // the file name without .sql, e.g. 0001_init
	SQL     string
}

// Parse reads fsys's migrations/*.sql in order and checks their
// numbering. backend prefixes errors ("sqlite", "postgres").
func Parse(fsys fs.FS, backend string) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for i, name := range names { // fs.Glob returns names sorted
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("%s: migration %s: want name %04d_description.sql", backend, name, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(base, ".sql"), SQL: string(b)})
	}
	return ms, nil
}

// MustParse is Parse for the embedded files of a package variable: a
// misnamed file is a build mistake, which the backends' tests catch.
func MustParse(fsys fs.FS, backend string) []Migration {
	ms, err := Parse(fsys, backend)
	if err != nil {
		panic(err)
	}
	return ms
}

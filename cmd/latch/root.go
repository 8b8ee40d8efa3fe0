package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/postgres"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/sqlite"
)

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "latch",
		Short:         "latch identifies users, services and browsers on every request: sessions, JWTs, opaque tokens",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(e), newMigrateCmd(e), newClientCmd(e), newKeysCmd(e), newGatewayCmd(e), newUserCmd(e), newRevokeCmd(e), newTokenCmd(e), newBFFCmd(e), newDoctorCmd(e), newBackupCmd(e), newRestoreCmd(e))
	root.Version = buildVersion()
	root.SetVersionTemplate("latch {{.Version}}\n")
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	tidyHelp(root)
	return root
}

// common holds the flags every command that touches a data directory has.
type common struct {
	dataDir     string
	databaseURL string
	kekFile     string
	kekFileFlag bool // --kek-file was given on the command line
	json        bool
}

func addCommon(cmd *cobra.Command, e *env, c *common, withJSON bool) {
	f := cmd.Flags()
	f.String("config", "", "YAML config file (env LATCH_CONFIG); flags override env, env overrides the file")
	f.StringVar(&c.dataDir, "data-dir", "./.latch", "directory of the SQLite database and, in --dev, the key-encryption key")
	f.StringVar(&c.databaseURL, "database-url", "",
		"PostgreSQL URL (postgres://user:pass@host/db) instead of the SQLite database in --data-dir; or set LATCH_DATABASE_URL")
	f.StringVar(&c.kekFile, "kek-file", "", "file holding the base64 key-encryption key (mode 0600); or set LATCH_KEK to the key itself. Default in --dev: DATA_DIR/kek")
	if withJSON {
		f.BoolVar(&c.json, "json", false, "print machine-readable JSON")
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		c.kekFileFlag = cmd.Flags().Changed("kek-file")
		return applyConfig(cmd, e)
	}
}

// store is what the commands use of a backend: the store, its schema
// version (latch migrate) and Close.
type store interface {
	latch.Store
	SchemaVersion(ctx context.Context) (int, error)
}

// create says what openStore may create of a missing SQLite store.
type create int

const (
	// existing: the database must be there. An operator command run in
	// the wrong directory must not register clients into a new, empty
	// database that no server reads.
	existing create = iota
	// database: the directory must exist; its database is created when
	// absent (serve without --dev, on an operator-made directory or
	// volume).
	database
	// directory: the directory and database are created when absent
	// (serve --dev, migrate).
	directory
)

// openStore opens the store and brings its schema up to date: PostgreSQL
// when --database-url is set, else the SQLite database of the data
// directory, created only as mode allows.
func openStore(ctx context.Context, c *common, mode create) (store, error) {
	if c.databaseURL != "" {
		if !strings.HasPrefix(c.databaseURL, "postgres://") && !strings.HasPrefix(c.databaseURL, "postgresql://") {
			return nil, usagef("--database-url must be a postgres:// URL; without it latch uses SQLite in --data-dir")
		}
		return postgres.Open(ctx, c.databaseURL)
	}
	if err := c.checkDataDir(mode); err != nil {
		return nil, err
	}
	if mode == directory {
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	db, err := sqlite.Open(ctx, paths(c.dataDir).db)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkDataDir refuses a SQLite data directory that mode may not create,
// naming the path looked at and the ways to point elsewhere.
func (c *common) checkDataDir(mode create) error {
	if c.databaseURL != "" || mode == directory {
		return nil
	}
	p := paths(c.dataDir)
	abs := func(path string) string {
		if a, err := filepath.Abs(path); err == nil {
			return a
		}
		return path
	}
	point := "point at the right one with --data-dir DIR or LATCH_DATA_DIR, or at PostgreSQL with --database-url"
	if mode == database {
		if fi, err := os.Stat(p.dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("data directory %s (--data-dir %s) does not exist: create it (mode 0700) or run `latch migrate --data-dir %s` once; or %s", abs(p.dir), p.dir, p.dir, point)
		}
		return nil
	}
	if _, err := os.Stat(p.db); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no latch database at %s (--data-dir %s): run this where `latch serve` runs, or %s; `latch serve --dev` or `latch migrate` creates one", abs(p.db), p.dir, point)
		}
		return fmt.Errorf("data directory %s: %w", abs(p.dir), err)
	}
	return nil
}

// where names the database for messages: the SQLite file, or PostgreSQL
// (never the URL, which may hold a password).
func (c *common) where() string {
	if c.databaseURL != "" {
		return "PostgreSQL (--database-url)"
	}
	return paths(c.dataDir).db
}

// withStore runs fn with the data directory's store open.
func withStore(cmd *cobra.Command, c *common, fn func(store) error) error {
	db, err := openStore(cmd.Context(), c, existing)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// loadSealer finds the key-encryption key, in the one precedence order of
// all settings: --kek-file on the command line, else LATCH_KEK (the key
// itself), else LATCH_KEK_FILE or kek_file in the config file, else
// DATA_DIR/kek when it exists, else (with create, for --dev) a new one
// written there.
func loadSealer(e *env, c *common, create bool) (*keys.Sealer, error) {
	var kek []byte
	var err error
	switch {
	case c.kekFileFlag:
		kek, err = keys.LoadKEKFile(c.kekFile)
	case e.getenv("LATCH_KEK") != "":
		kek, err = keys.ParseKEK(e.getenv("LATCH_KEK"))
		if err != nil {
			err = fmt.Errorf("LATCH_KEK: %w", err)
		}
	case c.kekFile != "":
		kek, err = keys.LoadKEKFile(c.kekFile)
	default:
		p := paths(c.dataDir).kek
		kek, err = keys.LoadKEKFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			if !create {
				return nil, fmt.Errorf("no key-encryption key: set LATCH_KEK or --kek-file (create one with `latch keys new-kek --out FILE`), or run `latch serve --dev` once to generate %s", p)
			}
			if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
				return nil, fmt.Errorf("create data directory: %w", err)
			}
			kek, err = keys.GenerateKEKFile(p, rand.Reader)
		}
	}
	if err != nil {
		return nil, err
	}
	return keys.NewSealer(kek)
}

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newMigrateCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "create or upgrade the database schema (serve does this too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openStore(cmd.Context(), &c, directory)
			if err != nil {
				return err
			}
			defer db.Close()
			v, err := db.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(e, map[string]any{"schema_version": v, "database": c.where()})
			}
			fmt.Fprintf(e.stdout, "schema version %d: %s\n", v, c.where())
			return nil
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

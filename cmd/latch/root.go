package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/postgres"
	"io/fs"
	"os"
	"strings"

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
	root.AddCommand(newServeCmd(e), newMigrateCmd(e), newClientCmd(e), newKeysCmd(e), newGatewayCmd(e), newUserCmd(e), newRevokeCmd(e), newTokenCmd(e), newBFFCmd(e))
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

// openStore opens the store and brings its schema up to date: PostgreSQL
// when --database-url is set, else (creating it if needed) the SQLite
// database of the data directory.
func openStore(ctx context.Context, c *common) (store, error) {
	if c.databaseURL != "" {
		if !strings.HasPrefix(c.databaseURL, "postgres://") && !strings.HasPrefix(c.databaseURL, "postgresql://") {
			return nil, usagef("--database-url must be a postgres:// URL; without it latch uses SQLite in --data-dir")
		}
		return postgres.Open(ctx, c.databaseURL)
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
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
	db, err := openStore(cmd.Context(), c)
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
			db, err := openStore(cmd.Context(), &c)
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

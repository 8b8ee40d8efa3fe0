package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/sqlite"
)

// backupRecord is DATA_DIR/backup.json: the last backup `latch backup`
// made of the directory's database, so that an operator (or a check that
// warns when none is recent) can tell without listing backup storage.
type backupRecord struct {
	At    time.Time `json:"at"`    // when the backup finished, UTC, RFC 3339
	To    string    `json:"to"`    // absolute path of the copy
	Bytes int64     `json:"bytes"` // its size
}

func backupRecordPath(dir string) string { return filepath.Join(dir, "backup.json") }

// notForPostgres refuses the SQLite file commands on PostgreSQL, naming
// what to use instead.
func notForPostgres(c *common, what string) error {
	if c.databaseURL == "" {
		return nil
	}
	return usagef("latch %s works on the SQLite database of --data-dir; for PostgreSQL use pg_dump or point-in-time recovery (docs/operations.md, \"Backup and restore\")", what)
}

func newBackupCmd(e *env) *cobra.Command {
	var (
		c  common
		to string
	)
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "write a consistent copy of the SQLite database to a new file, while latch serve runs",
		Long: `Writes a consistent copy of the data directory's SQLite database to FILE,
which must not exist: a backup never overwrites one. It is safe while
latch serve runs: the copy is one snapshot of the database (SQLite's VACUUM
INTO, a read transaction that holds up no writer), synced to disk and
checked before latch backup reports success. It then records the backup in
DATA_DIR/backup.json ({"at", "to", "bytes"}).

The copy holds what the database holds, sealed signing keys and token
hashes, but not the key-encryption key: keep the KEK (LATCH_KEK, --kek-file
or, with --dev, DATA_DIR/kek) safe elsewhere; a restore needs the same one.
Restore with latch restore. For PostgreSQL (--database-url) use pg_dump.`,
		Example: `  latch backup --to latch-backup.db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef("--to is required: the new file to write the backup to")
			}
			if err := notForPostgres(&c, "backup"); err != nil {
				return err
			}
			return withStore(cmd, &c, func(db store) error {
				sdb, ok := db.(*sqlite.DB)
				if !ok {
					return fmt.Errorf("latch backup: the store is not SQLite")
				}
				n, err := sdb.Backup(cmd.Context(), to)
				if err != nil {
					return err
				}
				abs, _ := filepath.Abs(to)
				rec := backupRecord{At: time.Now().UTC().Truncate(time.Second), To: abs, Bytes: n}
				if err := writeBackupRecord(c.dataDir, rec); err != nil {
					// The backup is good; only its record is missing, which
					// a check for a recent backup will report.
					fmt.Fprintf(e.stderr, "latch: warning: backup written, but not recorded in %s: %v\n", backupRecordPath(c.dataDir), err)
				}
				if c.json {
					return printJSON(e, rec)
				}
				fmt.Fprintf(e.stdout, "backup of %s written to %s (%d bytes)\n", sdb.Path(), abs, n)
				fmt.Fprintln(e.stdout, "it does not hold the key-encryption key: a restore needs the same one")
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	cmd.Flags().StringVar(&to, "to", "", "new file to write the backup to (refused if it exists)")
	return cmd
}

// writeBackupRecord replaces DATA_DIR/backup.json atomically, so a reader
// never sees half a record.
func writeBackupRecord(dir string, rec backupRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "backup.json.*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename there is nothing left to remove
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), backupRecordPath(dir))
}

func newRestoreCmd(e *env) *cobra.Command {
	var (
		c    common
		from string
	)
	cmd := &cobra.Command{
		Use:   "restore --from FILE --data-dir DIR",
		Short: "restore a backup made by latch backup into a new data directory",
		Long: `Restores FILE, a backup made by latch backup, as the database of the data
directory DIR, which must hold no database yet (it is created when missing):
restoring over a database would destroy what the backup lacks, and over one
a server has open would corrupt it. The backup is checked first (intact,
latch's schema), copied, synced and brought to this latch's schema.

Start latch serve on DIR with the same issuer and the same key-encryption
key as before: the signing keys in the backup are sealed with it (with
--dev, copy the old DATA_DIR/kek into DIR). What happened after the backup
is lost: tokens issued since are unknown (their holders get new ones), and
revocations made since are undone, so revoke again what you know was
revoked after the backup. Resource servers following the revocation feed
are told to start over (the feed's reset) and keep what they had
denylisted.`,
		Example: `  latch restore --from latch-backup.db --data-dir restored`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usagef("--from is required: the backup file made by latch backup")
			}
			if err := notForPostgres(&c, "restore"); err != nil {
				return err
			}
			// Changed also when LATCH_DATA_DIR or the config file set it.
			if !cmd.Flags().Changed("data-dir") {
				return usagef("--data-dir is required: the new data directory to restore into")
			}
			p := paths(c.dataDir)
			n, err := sqlite.Restore(cmd.Context(), from, p.db)
			if err != nil {
				return err
			}
			db, err := openStore(cmd.Context(), &c, existing) // migrates an older backup
			if err != nil {
				return fmt.Errorf("restored %s, but it does not open: %w", p.db, err)
			}
			defer db.Close()
			v, err := db.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			kek := checkRestoredKeys(cmd, e, &c, db)
			if c.json {
				return printJSON(e, map[string]any{"database": p.db, "bytes": n, "schema_version": v, "key_encryption_key": kek})
			}
			fmt.Fprintf(e.stdout, "restored %s into %s (%d bytes, schema version %d)\n", from, p.db, n, v)
			fmt.Fprintf(e.stdout, "key-encryption key: %s\n", kek)
			fmt.Fprintln(e.stdout, "start latch serve on it with the same --issuer; revoke again what was revoked after the backup")
			return nil
		},
	}
	addCommon(cmd, e, &c, true)
	cmd.Flags().StringVar(&from, "from", "", "the backup file to restore")
	return cmd
}

// checkRestoredKeys says whether the key-encryption key latch finds for
// this data directory opens the restored signing keys: a serve with
// another one would start but could not sign.
func checkRestoredKeys(cmd *cobra.Command, e *env, c *common, db store) string {
	sealer, err := loadSealer(e, c, false)
	if err != nil {
		return "none found here yet: give latch serve the key-encryption key that was in use when the backup was made"
	}
	m, err := keys.NewManager(db, sealer, keys.Config{})
	if err == nil {
		err = m.Reload(cmd.Context())
	}
	if err != nil {
		return fmt.Sprintf("the one found does not open the backup's signing keys (%v): use the key-encryption key that was in use when the backup was made", err)
	}
	return "the one found opens the backup's signing keys"
}

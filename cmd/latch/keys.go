package main

import (
	"crypto/rand"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/keys"
)

// keysFlags are the key-management settings shared by serve and keys.
type keysFlags struct {
	alg         string
	idTokenAlg  string
	prePublish  time.Duration
	maxTokenTTL time.Duration
}

// DefaultIDTokenAlg is latch serve's --id-token-alg: RS256, the algorithm
// OIDC Core §15.1 and Discovery §3 require every provider to offer and
// every relying party to verify. Its key is 2048-bit RSA (keys.
// DefaultRSABits): NIST SP 800-57 Part 1 rates it 112-bit secure through
// 2030, keys are rotated far sooner, and signing costs a quarter of
// 3072-bit's on every login.
const DefaultIDTokenAlg = latch.RS256

// addKeysFlags adds the flags of commands that make keys (serve, keys
// rotate): their algorithm and schedule.
func addKeysFlags(cmd *cobra.Command, k *keysFlags) {
	f := cmd.Flags()
	f.StringVar(&k.alg, "signing-alg", string(keys.DefaultAlgorithm), "algorithm of new signing keys: ES256, EdDSA, RS256 or PS256")
	f.DurationVar(&k.prePublish, "key-prepublish", keys.DefaultPrePublish, "how long a rotated key is published in the JWKS before it signs")
	f.StringVar(&k.idTokenAlg, "id-token-alg", string(DefaultIDTokenAlg),
		"algorithm of ID tokens for clients that do not register one; a key of it is kept and rotated beside the --signing-alg key when they differ ('' for the --signing-alg key alone)")
	addKeyReadFlags(cmd, k)
}

// addKeyReadFlags adds the one key setting of commands that use keys
// without making them (keys list and retire, token): how long a superseded
// key stays published, which decides the keys' states and which verify.
func addKeyReadFlags(cmd *cobra.Command, k *keysFlags) {
	cmd.Flags().DurationVar(&k.maxTokenTTL, "max-access-token-ttl", keys.DefaultMaxTokenTTL, "longest access-token lifetime; a superseded key stays published this long")
}

func (k *keysFlags) config() (keys.Config, error) {
	cfg := keys.Config{Algorithm: latch.Algorithm(k.alg), IDTokenAlgorithm: latch.Algorithm(k.idTokenAlg),
		PrePublish: k.prePublish, MaxTokenTTL: k.maxTokenTTL}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// openKeys opens the store and a key manager over it.
func openKeys(cmd *cobra.Command, e *env, c *common, k *keysFlags) (store, *keys.Manager, error) {
	cfg, err := k.config()
	if err != nil {
		return nil, nil, err
	}
	// The missing database is the first thing to fix: without it, the
	// key-encryption key's absence would be reported instead.
	if err := c.checkDataDir(existing); err != nil {
		return nil, nil, err
	}
	sealer, err := loadSealer(e, c, false)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(cmd.Context(), c, existing)
	if err != nil {
		return nil, nil, err
	}
	m, err := keys.NewManager(db, sealer, cfg)
	if err == nil {
		err = m.Reload(cmd.Context())
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, m, nil
}

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "list, rotate and retire signing keys (a running server picks changes up within 10s)"}
	cmd.AddCommand(keysListCmd(e), keysRotateCmd(e), keysRetireCmd(e), keysNewKEKCmd(e))
	return cmd
}

// signs says what a key of purpose p signs.
func signs(p latch.KeyPurpose) string {
	if p == latch.PurposeIDToken {
		return "ID tokens"
	}
	return "all tokens"
}

func keysListCmd(e *env) *cobra.Command {
	var (
		c common
		k keysFlags
	)
	cmd := &cobra.Command{
		Use: "list", Short: "list signing keys and their state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, m, err := openKeys(cmd, e, &c, &k)
			if err != nil {
				return err
			}
			defer db.Close()
			list, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(e, list)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVE FROM\tPUBLISHED UNTIL\tSIGNS")
			for _, ki := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ki.ID, ki.Algorithm, ki.State, stamp(ki.CreatedAt), stamp(ki.ActiveAt), stamp(ki.PublishedUntil), signs(ki.Purpose))
			}
			return tw.Flush()
		},
	}
	addCommon(cmd, e, &c, true)
	addKeyReadFlags(cmd, &k)
	return cmd
}

func keysRotateCmd(e *env) *cobra.Command {
	var (
		c common
		k keysFlags
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "create a new signing key; it is published at once and signs after --key-prepublish",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, m, err := openKeys(cmd, e, &c, &k)
			if err != nil {
				return err
			}
			defer db.Close()
			key, err := m.Rotate(cmd.Context(), latch.Algorithm(k.alg))
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(e, map[string]any{"kid": key.ID, "alg": key.Algorithm, "active_at": key.ActiveAt.UTC()})
			}
			fmt.Fprintf(e.stdout, "new key %s (%s) is published now and signs from %s\n", key.ID, key.Algorithm, stamp(key.ActiveAt))
			if list, err := m.List(cmd.Context()); err == nil {
				for _, ki := range list {
					if ki.Purpose == latch.PurposeIDToken && ki.CreatedAt.Equal(key.CreatedAt) {
						fmt.Fprintf(e.stdout, "new key %s (%s) signs %s from the same time\n", ki.ID, ki.Algorithm, signs(ki.Purpose))
					}
				}
			}
			return nil
		},
	}
	addCommon(cmd, e, &c, true)
	addKeysFlags(cmd, &k)
	return cmd
}

func keysRetireCmd(e *env) *cobra.Command {
	var (
		c   common
		k   keysFlags
		now bool
	)
	cmd := &cobra.Command{
		Use:   "retire KID",
		Short: "stop signing with a key; it stays published until its tokens expire, or leaves the JWKS at once with --now (compromise)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, m, err := openKeys(cmd, e, &c, &k)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := m.Retire(cmd.Context(), args[0], now); err != nil {
				return err
			}
			if c.json {
				return printJSON(e, map[string]any{"retired": args[0], "removed": now})
			}
			fmt.Fprintf(e.stdout, "retired key %s\n", args[0])
			return nil
		},
	}
	addCommon(cmd, e, &c, true)
	addKeyReadFlags(cmd, &k)
	cmd.Flags().BoolVar(&now, "now", false, "also remove the key from the JWKS at once: every token it signed stops verifying")
	return cmd
}

func keysNewKEKCmd(e *env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "new-kek --out FILE",
		Short: "generate a key-encryption key into a new file (mode 0600) for --kek-file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			if _, err := keys.GenerateKEKFile(out, rand.Reader); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote a new key-encryption key to %s; keep it secret and backed up: without it the signing keys cannot be opened\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create")
	return cmd
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/password"
)

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "create and manage users who log in with a password (works while a server runs on the same data directory)",
		Long: `Create and manage users who log in with a password.

USER is a user's ID, username or email (case-insensitive). Passwords are read from a
no-echo prompt on a terminal, or from stdin (--password-stdin, or whenever
stdin is not a terminal); never from the command line, where other users of
the machine and the shell history would see them.

Changing a password, disabling a user, changing roles or groups and deleting
a user end all of the user's login sessions.`,
	}
	cmd.AddCommand(userCreateCmd(e), userListCmd(e), userGetCmd(e),
		userDisableCmd(e, true), userDisableCmd(e, false), userDeleteCmd(e),
		userSetPasswordCmd(e), userSetRolesCmd(e), userSetProfileCmd(e))
	return cmd
}

// passwordFlags configure hashing and the password policy; latch serve has
// them too, and LATCH_ARGON2_MEMORY etc. set both at once.
type passwordFlags struct {
	minLen      int
	memory      uint32
	iterations  uint32
	parallelism uint8
	blocklist   string
}

func addPasswordFlags(cmd *cobra.Command, p *passwordFlags) {
	d := password.DefaultParams
	f := cmd.Flags()
	f.IntVar(&p.minLen, "min-password-length", registry.DefaultMinPasswordLen, "shortest password accepted, in characters (NIST SP 800-63B-4 requires 15 for a password used alone)")
	f.Uint32Var(&p.memory, "argon2-memory", d.Memory, "argon2id memory per hash, in KiB (OWASP: 19456 with 2 iterations)")
	f.Uint32Var(&p.iterations, "argon2-iterations", d.Iterations, "argon2id passes over the memory")
	f.Uint8Var(&p.parallelism, "argon2-parallelism", d.Parallelism, "argon2id lanes")
	f.StringVar(&p.blocklist, "breached-passwords", "",
		"file of passwords to refuse besides the built-in 30,000 most common ones, one per line: plain, or SHA-1 hex with an optional :count (Have I Been Pwned's format)")
}

// loadBlocklist reads --breached-passwords; nil when it is not set.
func (p *passwordFlags) loadBlocklist() (*password.Blocklist, error) {
	if p.blocklist == "" {
		return nil, nil
	}
	f, err := os.Open(p.blocklist)
	if err != nil {
		return nil, fmt.Errorf("--breached-passwords: %w", err)
	}
	defer f.Close()
	b, err := password.LoadBlocklist(f)
	if err != nil {
		return nil, fmt.Errorf("--breached-passwords %s: %w", p.blocklist, err)
	}
	return b, nil
}

func (p *passwordFlags) params() password.Params {
	prm := password.DefaultParams
	prm.Memory, prm.Iterations, prm.Parallelism = p.memory, p.iterations, p.parallelism
	return prm
}

func (p *passwordFlags) users(db store) (*registry.Users, error) {
	m := &registry.Users{Store: db, Params: p.params(), MinPasswordLen: p.minLen}
	if err := m.Validate(); err != nil {
		return nil, usageError{err}
	}
	b, err := p.loadBlocklist()
	if err != nil {
		return nil, err
	}
	m.Blocklist = b
	return m, nil
}

func userCreateCmd(e *env) *cobra.Command {
	var (
		c         common
		pf        passwordFlags
		spec      registry.UserSpec
		prof      profileFlags
		fromStdin bool
	)
	cmd := &cobra.Command{
		Use:   "create USERNAME",
		Short: "create a user; the password is read from a prompt or stdin, never from the command line",
		Example: `  latch user create alice --role admin --group eng        # prompts for the password
  latch user create carol --email carol@example.com --email-verified --name "Carol Danvers"
  printf '%s\n' "$PASSWORD" | latch user create bob --password-stdin`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Username, spec.ProfileSpec = args[0], prof.spec
			// Refuse a bad name before asking for a password.
			if _, err := latch.NormalizeUsername(spec.Username); err != nil {
				return err
			}
			return withStore(cmd, &c, func(db store) error {
				m, err := pf.users(db)
				if err != nil {
					return err
				}
				if spec.Password, err = readNewPassword(e, fromStdin); err != nil {
					return err
				}
				v, err := m.Create(cmd.Context(), spec)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, v)
				}
				printUser(e, v)
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	addPasswordFlags(cmd, &pf)
	f := cmd.Flags()
	f.StringSliceVar(&spec.Roles, "role", nil, "roles, which become claims (repeat or comma-separate); latch:admin lets the user's tokens use the admin API")
	f.StringSliceVar(&spec.Groups, "group", nil, "groups, which become claims (repeat or comma-separate)")
	f.BoolVar(&spec.Disabled, "disabled", false, "create the user disabled (cannot log in until `latch user enable`)")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (one line), even on a terminal")
	prof.add(f)
	return cmd
}

func userListCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "list", Short: "list users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(db store) error {
				vs, err := (&registry.Users{Store: db}).List(cmd.Context())
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, vs)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tSTATE\tROLES\tGROUPS")
				for _, v := range vs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Username, v.Email, state(v),
						strings.Join(v.Roles, ","), strings.Join(v.Groups, ","))
				}
				return tw.Flush()
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func userGetCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "get USER", Short: "show one user (by ID, username or email)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				v, err := (&registry.Users{Store: db}).Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(e, v)
				}
				printUser(e, v)
				return nil
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

// userDisableCmd is `latch user disable` (disable true) or `enable`.
func userDisableCmd(e *env, disable bool) *cobra.Command {
	var c common
	use, short, done := "enable USER", "let a disabled user log in again", "enabled"
	if disable {
		use, short, done = "disable USER", "stop a user from logging in and end all of the user's login sessions", "disabled"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				v, err := (&registry.Users{Store: db}).SetDisabled(cmd.Context(), args[0], disable)
				return printChange(e, &c, v, err, done)
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func userDeleteCmd(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use: "delete USER", Short: "delete a user and end all of the user's login sessions", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				v, err := (&registry.Users{Store: db}).Delete(cmd.Context(), args[0])
				return printChange(e, &c, v, err, "deleted")
			})
		},
	}
	addCommon(cmd, e, &c, true)
	return cmd
}

func userSetPasswordCmd(e *env) *cobra.Command {
	var (
		c         common
		pf        passwordFlags
		fromStdin bool
	)
	cmd := &cobra.Command{
		Use:   "set-password USER",
		Short: "replace a user's password (from a prompt or stdin) and end all of the user's login sessions",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(db store) error {
				m, err := pf.users(db)
				if err != nil {
					return err
				}
				// Find the user before asking for a password, so a typo in
				// the name is not discovered after typing it twice.
				if _, err := m.Get(cmd.Context(), args[0]); err != nil {
					return err
				}
				pw, err := readNewPassword(e, fromStdin)
				if err != nil {
					return err
				}
				v, err := m.SetPassword(cmd.Context(), args[0], pw)
				return printChange(e, &c, v, err, "changed the password of")
			})
		},
	}
	addCommon(cmd, e, &c, true)
	addPasswordFlags(cmd, &pf)
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (one line), even on a terminal")
	return cmd
}

func userSetRolesCmd(e *env) *cobra.Command {
	var (
		c             common
		roles, groups []string
	)
	cmd := &cobra.Command{
		Use:   "set-roles USER",
		Short: "replace a user's roles and/or groups and end all of the user's login sessions",
		Long: `Replace a user's roles (--role) and/or groups (--group); a flag not given
leaves that list as it is, and --role= (empty) clears it. All of the user's
login sessions end, so the next login carries the new claims.`,
		Example: `  latch user set-roles alice --role admin,ops
  latch user set-roles alice --group= `,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			setRoles, setGroups := cmd.Flags().Changed("role"), cmd.Flags().Changed("group")
			if !setRoles && !setGroups {
				return usagef("`latch user set-roles` needs --role or --group (or both); see --help")
			}
			return withStore(cmd, &c, func(db store) error {
				m := &registry.Users{Store: db}
				cur, err := m.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !setRoles {
					roles = cur.Roles
				}
				if !setGroups {
					groups = cur.Groups
				}
				v, err := m.SetRoles(cmd.Context(), cur.ID, roles, groups)
				return printChange(e, &c, v, err, "changed the roles of")
			})
		},
	}
	addCommon(cmd, e, &c, true)
	cmd.Flags().StringSliceVar(&roles, "role", nil, "the user's roles (repeat or comma-separate); latch:admin lets the user's tokens use the admin API")
	cmd.Flags().StringSliceVar(&groups, "group", nil, "the user's groups (repeat or comma-separate)")
	return cmd
}

// readNewPassword reads a new password: from stdin when fromStdin is set or
// stdin is not a terminal (one line; the newline is not part of it), else
// from the terminal without echo, twice. Never from argv: a password there
// is visible to every user of the machine (ps, /proc) and lands in the
// shell history.
func readNewPassword(e *env, fromStdin bool) (string, error) {
	f, isFile := e.stdin.(*os.File)
	if !fromStdin && isFile && term.IsTerminal(int(f.Fd())) {
		return promptPassword(e, int(f.Fd()))
	}
	if e.stdin == nil {
		return "", errors.New("no password on stdin: pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | latch user ...")
	}
	b, err := io.ReadAll(io.LimitReader(e.stdin, password.MaxPasswordLen+3))
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return "", errors.New("no password on stdin: pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | latch user ...")
	case len(b) > password.MaxPasswordLen:
		return "", fmt.Errorf("the password on stdin is longer than %d bytes", password.MaxPasswordLen)
	case bytes.ContainsAny(b, "\r\n"):
		// A login form cannot send a line break in a password field.
		return "", errors.New("stdin holds more than one line: give the password alone, on one line")
	}
	return string(b), nil
}

func promptPassword(e *env, fd int) (string, error) {
	read := func(prompt string) (string, error) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	pw, err := read("New password: ")
	if err != nil {
		return "", err
	}
	again, err := read("Repeat password: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords do not match; nothing was changed")
	}
	return pw, nil
}

// printChange reports a change that may have ended login sessions.
func printChange(e *env, c *common, v *registry.UserView, err error, done string) error {
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, v)
	}
	fmt.Fprintf(e.stdout, "%s user %s (%s)", done, v.Username, v.ID)
	if v.SessionsEnded != nil {
		fmt.Fprintf(e.stdout, "; ended %d login session(s)", *v.SessionsEnded)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func state(v *registry.UserView) string {
	if v.Disabled {
		return "disabled"
	}
	return "enabled"
}

func printUser(e *env, v *registry.UserView) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\n", v.ID)
	fmt.Fprintf(tw, "username:\t%s\n", v.Username)
	fmt.Fprintf(tw, "state:\t%s\n", state(v))
	fmt.Fprintf(tw, "roles:\t%s\n", strings.Join(v.Roles, " "))
	fmt.Fprintf(tw, "groups:\t%s\n", strings.Join(v.Groups, " "))
	printProfile(tw, v)
	fmt.Fprintf(tw, "created:\t%s\n", v.CreatedAt.Format(time.RFC3339))
	if v.PasswordChangedAt != nil {
		fmt.Fprintf(tw, "password set:\t%s\n", v.PasswordChangedAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(tw, "password set:\tnever\n")
	}
	tw.Flush()
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"golang.org/x/term"
)

// UserCmd groups the user commands.
type UserCmd struct {
	Create UserCreateCmd `cmd:"" help:"Create a user (password from MITRA_USER_PASSWORD, else prompted)."`
	List   UserListCmd   `cmd:"" help:"List users."`
	Show   UserShowCmd   `cmd:"" help:"Show a user: organisation, role, tokens, collections."`
	Update UserUpdateCmd `cmd:"" help:"Change a user's --role or --org."`
	Passwd UserPasswdCmd `cmd:"" help:"Set a user's password (from MITRA_USER_PASSWORD, else prompted)."`
	Delete UserDeleteCmd `cmd:"" help:"Delete a user."`
}

// UserUpdateCmd changes a user's role or organisation.
type UserUpdateCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"User name."`
	Role       string `enum:"admin,analyst,read-only,sensor,relay," default:"" help:"New role: admin, analyst, read-only, sensor or relay."`
	Org        string `help:"New organisation (name or identity id)."`
}

// Run implements the command.
func (c *UserUpdateCmd) Run(ctx context.Context, e *env) error {
	if c.Role == "" && c.Org == "" {
		return errors.New("say --role, --org or both")
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		var ch access.UserChange
		if c.Role != "" {
			ch.Role = &c.Role
		}
		if c.Org != "" {
			o, err := st.GetOrganisation(ctx, c.Org)
			if err != nil {
				return err
			}
			ch.Organisation = &o.ID
		}
		u, err := access.UpdateUser(ctx, st, c.Name, ch)
		if err != nil {
			return err
		}
		if err := audited(ctx, st, e, "admin.user.update", u.Name, "role "+u.Role+", organisation "+u.Organisation, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "Updated user %s: role %s, organisation %s.\n", u.Name, u.Role, u.Organisation)
		return nil
	})
}

// UserPasswdCmd sets a user's password.
type UserPasswdCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"User name."`
}

// Run implements the command.
func (c *UserPasswdCmd) Run(ctx context.Context, e *env) error {
	pw := e.getenv("MITRA_USER_PASSWORD")
	if pw == "" {
		var err error
		if pw, err = promptPassword(e, "New password for "+c.Name+": "); err != nil {
			return err
		}
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		_, err := access.UpdateUser(ctx, st, c.Name, access.UserChange{Password: &pw})
		return audited(ctx, st, e, "admin.user.password", c.Name, "", err)
	})
}

// UserShowCmd shows one user.
type UserShowCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"User name."`
}

// Run implements the command.
func (c *UserShowCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		u, err := st.GetUser(ctx, c.Name)
		if err != nil {
			return err
		}
		org, err := st.GetOrganisation(ctx, u.Organisation)
		if err != nil {
			return err
		}
		groups, err := st.GroupsOf(ctx, org.ID)
		if err != nil {
			return err
		}
		p := &access.Principal{User: u.Name, Organisation: u.Organisation, Groups: groups, Role: u.Role}
		fmt.Fprintf(e.stdout, "name: %s\norganisation: %s (%s)\nrole: %s\ncreated: %s\n", u.Name, org.Name, org.ID, u.Role, u.Created.Format(time.RFC3339))
		tokens, err := st.ListTokens(ctx, u.Name)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tokens: %d\ncollections:\n", len(tokens))
		cols, err := st.ListCollections(ctx)
		if err != nil {
			return err
		}
		for _, col := range cols {
			if r, w := access.CollectionAccess(p, col); r || w {
				fmt.Fprintf(e.stdout, "  %s  %s  read=%v write=%v\n", col.ID, col.Title, r, w)
			}
		}
		return nil
	})
}

// UserCreateCmd creates a user.
type UserCreateCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"User name."`
	Org        string `help:"Organisation (name or identity id); the default organisation when empty."`
	Role       string `default:"analyst" enum:"admin,analyst,read-only,sensor,relay" help:"Role: admin, analyst, read-only, sensor or relay."`
}

// Run implements the command.
func (c *UserCreateCmd) Run(ctx context.Context, e *env) error {
	pw := e.getenv("MITRA_USER_PASSWORD")
	if pw == "" {
		var err error
		if pw, err = promptPassword(e, "Password for "+c.Name+": "); err != nil {
			return err
		}
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		org := ""
		if c.Org != "" {
			o, err := st.GetOrganisation(ctx, c.Org)
			if err != nil {
				return err
			}
			org = o.ID
		}
		if _, err := access.CreateUser(ctx, st, c.Name, pw, c.Role, org); err != nil {
			return err
		}
		if err := audited(ctx, st, e, "admin.user.create", c.Name, "role "+c.Role, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "Created user %s (%s).\n", c.Name, c.Role)
		return nil
	})
}

// promptPassword reads a password from the terminal without echo, or a line
// from standard input when it is not a terminal.
func promptPassword(e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: set MITRA_USER_PASSWORD or type one")
	}
	return line, nil
}

// UserListCmd lists users.
type UserListCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *UserListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tORGANISATION\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.Organisation, u.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

// UserDeleteCmd deletes a user.
type UserDeleteCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"User name."`
}

// Run implements the command.
func (c *UserDeleteCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		return audited(ctx, st, e, "admin.user.delete", c.Name, "", st.DeleteUser(ctx, c.Name))
	})
}

// CollectionCmd groups the collection commands.
type CollectionCmd struct {
	Create CollectionCreateCmd `cmd:"" help:"Create a collection; prints only its id."`
	List   CollectionListCmd   `cmd:"" help:"List collections."`
	Delete CollectionDeleteCmd `cmd:"" help:"Delete a collection and everything in it."`
	Policy CollectionPolicyCmd `cmd:"" help:"Set a collection's default TLP and recipients."`
	Grant  CollectionGrantCmd  `cmd:"" help:"Grant --read and/or --write to an --org, a --group or a --user."`
	Revoke CollectionRevokeCmd `cmd:"" help:"Revoke --read and/or --write from an --org, a --group or a --user."`
}

// CollectionCreateCmd creates a collection.
type CollectionCreateCmd struct {
	StoreFlags  `embed:""`
	Title       string   `required:"" help:"Title."`
	Description string   `help:"Description."`
	Alias       string   `help:"Alias, unique, usable in URLs in place of the id."`
	Readers     []string `sep:"," help:"Users who may read (comma-separated)."`
	Writers     []string `sep:"," help:"Users who may write (comma-separated)."`
	DefaultTLP  string   `name:"default-tlp" default:"amber" help:"TLP for objects without a TLP marking: clear, green, amber, amber+strict, red."`
	Recipients  []string `sep:"," help:"Organisations named as recipients of the collection's AMBER+STRICT and RED objects."`
}

// Run implements the command.
func (c *CollectionCreateCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		tlp, err := access.ParseTLP(c.DefaultTLP)
		if err != nil {
			return fmt.Errorf("--default-tlp: %w", err)
		}
		col := &store.Collection{Title: c.Title, Description: c.Description, Alias: c.Alias, Readers: c.Readers, Writers: c.Writers, DefaultTLP: int(tlp)}
		for _, r := range c.Recipients {
			o, err := st.GetOrganisation(ctx, r)
			if err != nil {
				return err
			}
			col.Recipients = append(col.Recipients, o.ID)
		}
		if err := st.CreateCollection(ctx, col); err != nil {
			return err
		}
		if err := audited(ctx, st, e, "admin.collection.create", col.ID, col.Title, nil); err != nil {
			return err
		}
		// Scripts read the id from standard output: print it alone.
		fmt.Fprintln(e.stdout, col.ID)
		return nil
	})
}

// CollectionListCmd lists collections.
type CollectionListCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *CollectionListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		cols, err := st.ListCollections(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTITLE\tALIAS\tREADERS\tWRITERS")
		for _, col := range cols {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", col.ID, col.Title, col.Alias, strings.Join(col.Readers, ","), strings.Join(col.Writers, ","))
		}
		return tw.Flush()
	})
}

// CollectionDeleteCmd deletes a collection.
type CollectionDeleteCmd struct {
	StoreFlags `embed:""`
	ID         string `arg:"" help:"Collection id."`
}

// Run implements the command.
func (c *CollectionDeleteCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		col, err := st.GetCollection(ctx, c.ID)
		if err != nil {
			return err
		}
		return audited(ctx, st, e, "admin.collection.delete", col.ID, col.Title, st.DeleteCollection(ctx, col.ID))
	})
}

// TokenCmd groups the API token commands.
type TokenCmd struct {
	Create TokenCreateCmd `cmd:"" help:"Create an API token; prints only the token, once."`
	List   TokenListCmd   `cmd:"" help:"List API tokens (never their secrets)."`
	Revoke TokenRevokeCmd `cmd:"" help:"Revoke an API token by id."`
}

// TokenCreateCmd creates a token.
type TokenCreateCmd struct {
	StoreFlags `embed:""`
	User       string        `required:"" help:"User the token acts for."`
	Role       string        `enum:"admin,analyst,read-only,sensor,relay," default:"" help:"Role of the token (at most the user's own)."`
	Expires    time.Duration `default:"2160h" env:"MITRA_TOKEN_EXPIRY" help:"Lifetime, such as 720h; 0 for none."`
}

// Run implements the command.
func (c *TokenCreateCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		secret, t, err := access.CreateToken(ctx, st, c.User, c.Role, c.Expires, time.Now())
		if err != nil {
			return err
		}
		if err := audited(ctx, st, e, "admin.token.create", t.ID, "token for user "+t.User+", role "+t.Role, nil); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, secret)
		return nil
	})
}

// TokenListCmd lists tokens.
type TokenListCmd struct {
	StoreFlags `embed:""`
	User       string `help:"Only this user's tokens."`
}

// Run implements the command.
func (c *TokenListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ts, err := st.ListTokens(ctx, c.User)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tROLE\tCREATED\tEXPIRES\tREVOKED")
		for _, t := range ts {
			exp := "never"
			if !t.Expires.IsZero() {
				exp = t.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", t.ID, t.User, t.Role, t.Created.Format(time.RFC3339), exp, t.Revoked)
		}
		return tw.Flush()
	})
}

// TokenRevokeCmd revokes a token.
type TokenRevokeCmd struct {
	StoreFlags `embed:""`
	ID         string `arg:"" help:"Token id (see 'mitra token list')."`
}

// Run implements the command.
func (c *TokenRevokeCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		return audited(ctx, st, e, "admin.token.revoke", c.ID, "", st.RevokeToken(ctx, c.ID))
	})
}

// CollectionPolicyCmd sets a collection's marking policy.
type CollectionPolicyCmd struct {
	StoreFlags `embed:""`
	ID         string   `arg:"" help:"Collection id or alias."`
	DefaultTLP string   `name:"default-tlp" default:"amber" help:"TLP for objects without a TLP marking: clear, green, amber, amber+strict, red."`
	Recipients []string `sep:"," help:"Organisations named as recipients of the collection's AMBER+STRICT and RED objects (replaces the list)."`
}

// Run implements the command.
func (c *CollectionPolicyCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		tlp, err := access.ParseTLP(c.DefaultTLP)
		if err != nil {
			return fmt.Errorf("--default-tlp: %w", err)
		}
		col, err := st.GetCollection(ctx, c.ID)
		if err != nil {
			return err
		}
		var recipients []string
		for _, r := range c.Recipients {
			o, err := st.GetOrganisation(ctx, r)
			if err != nil {
				return err
			}
			recipients = append(recipients, o.ID)
		}
		err = st.SetCollectionPolicy(ctx, col.ID, int(tlp), recipients)
		return audited(ctx, st, e, "admin.collection.policy", col.ID, fmt.Sprintf("default %s, recipients %s", tlp, strings.Join(recipients, ",")), err)
	})
}

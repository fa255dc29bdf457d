package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// OrgCmd groups the organisation commands.
type OrgCmd struct {
	Create OrgCreateCmd `cmd:"" help:"Create an organisation; prints only its identity id."`
	List   OrgListCmd   `cmd:"" help:"List organisations."`
	Show   OrgShowCmd   `cmd:"" help:"Show an organisation, its users and groups."`
	Delete OrgDeleteCmd `cmd:"" help:"Delete an organisation without users."`
}

// OrgCreateCmd creates an organisation.
type OrgCreateCmd struct {
	StoreFlags         `embed:""`
	Name               string `arg:"" help:"Organisation name."`
	AnonymiseSightings bool   `help:"Hide this organisation's identity in the sightings it shares."`
}

// Run implements the command.
func (c *OrgCreateCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		o := &store.Organisation{Name: c.Name, AnonymiseSightings: c.AnonymiseSightings}
		if err := st.CreateOrganisation(ctx, o); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, o.ID)
		return nil
	})
}

// OrgListCmd lists organisations.
type OrgListCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *OrgListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		orgs, err := st.ListOrganisations(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tANONYMISE SIGHTINGS\tDEFAULT")
		for _, o := range orgs {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", o.ID, o.Name, o.AnonymiseSightings, o.Default)
		}
		return tw.Flush()
	})
}

// OrgShowCmd shows one organisation.
type OrgShowCmd struct {
	StoreFlags `embed:""`
	Org        string `arg:"" help:"Organisation name or identity id."`
	STIX       bool   `name:"stix" help:"Print the organisation's STIX identity object instead."`
}

// Run implements the command.
func (c *OrgShowCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		o, err := st.GetOrganisation(ctx, c.Org)
		if err != nil {
			return err
		}
		if c.STIX {
			fmt.Fprintf(e.stdout, "%s\n", access.IdentityObject(o))
			return nil
		}
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, u := range users {
			if u.Organisation == o.ID {
				names = append(names, u.Name+" ("+u.Role+")")
			}
		}
		groups, err := st.GroupsOf(ctx, o.ID)
		if err != nil {
			return err
		}
		var gnames []string
		for _, id := range groups {
			if g, err := st.GetGroup(ctx, id); err == nil {
				gnames = append(gnames, g.Name)
			}
		}
		fmt.Fprintf(e.stdout, "id: %s\nname: %s\ncreated: %s\nanonymise sightings: %v\nusers: %s\ngroups: %s\n",
			o.ID, o.Name, o.Created.Format(time.RFC3339), o.AnonymiseSightings, strings.Join(names, ", "), strings.Join(gnames, ", "))
		return nil
	})
}

// OrgDeleteCmd deletes an organisation.
type OrgDeleteCmd struct {
	StoreFlags `embed:""`
	Org        string `arg:"" help:"Organisation name or identity id."`
}

// Run implements the command.
func (c *OrgDeleteCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		o, err := st.GetOrganisation(ctx, c.Org)
		if err != nil {
			return err
		}
		return audited(ctx, st, "admin.org.delete", o.ID, st.DeleteOrganisation(ctx, o.ID))
	})
}

// GroupCmd groups the sharing-group commands.
type GroupCmd struct {
	Create GroupCreateCmd `cmd:"" help:"Create a sharing group of organisations; prints only its id."`
	List   GroupListCmd   `cmd:"" help:"List sharing groups."`
	Show   GroupShowCmd   `cmd:"" help:"Show a sharing group."`
	Delete GroupDeleteCmd `cmd:"" help:"Delete a sharing group (its collection grants go with it)."`
}

// GroupCreateCmd creates a group.
type GroupCreateCmd struct {
	StoreFlags `embed:""`
	Name       string   `arg:"" help:"Group name."`
	Orgs       []string `sep:"," required:"" help:"Member organisations (names or identity ids, comma-separated)."`
}

// Run implements the command.
func (c *GroupCreateCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		g := &store.Group{Name: c.Name}
		for _, name := range c.Orgs {
			o, err := st.GetOrganisation(ctx, name)
			if err != nil {
				return err
			}
			g.Orgs = append(g.Orgs, o.ID)
		}
		if err := st.CreateGroup(ctx, g); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, g.ID)
		return audited(ctx, st, "admin.group.create", g.Name, nil)
	})
}

// GroupListCmd lists groups.
type GroupListCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *GroupListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		gs, err := st.ListGroups(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tORGANISATIONS")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", g.ID, g.Name, strings.Join(g.Orgs, ","))
		}
		return tw.Flush()
	})
}

// GroupShowCmd shows a group.
type GroupShowCmd struct {
	StoreFlags `embed:""`
	Group      string `arg:"" help:"Group name or id."`
}

// Run implements the command.
func (c *GroupShowCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		g, err := st.GetGroup(ctx, c.Group)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "id: %s\nname: %s\norganisations:\n", g.ID, g.Name)
		for _, id := range g.Orgs {
			name := id
			if o, err := st.GetOrganisation(ctx, id); err == nil {
				name = o.Name + " (" + id + ")"
			}
			fmt.Fprintf(e.stdout, "  %s\n", name)
		}
		return nil
	})
}

// GroupDeleteCmd deletes a group.
type GroupDeleteCmd struct {
	StoreFlags `embed:""`
	Group      string `arg:"" help:"Group name or id."`
}

// Run implements the command.
func (c *GroupDeleteCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		g, err := st.GetGroup(ctx, c.Group)
		if err != nil {
			return err
		}
		return audited(ctx, st, "admin.group.delete", g.Name, st.DeleteGroup(ctx, g.ID))
	})
}

// CollectionGrantCmd grants access to a collection.
type CollectionGrantCmd struct {
	StoreFlags `embed:""`
	ID         string `arg:"" help:"Collection id or alias."`
	Read       bool   `help:"Grant (or with revoke, remove) reading."`
	Write      bool   `help:"Grant (or with revoke, remove) writing."`
	Org        string `xor:"who" required:"" help:"Organisation (name or identity id)."`
	Group      string `xor:"who" required:"" help:"Sharing group (name or id)."`
	User       string `xor:"who" required:"" help:"User name."`
}

// CollectionRevokeCmd revokes access to a collection.
type CollectionRevokeCmd struct {
	CollectionGrantCmd `embed:""`
}

// Run implements the command.
func (c *CollectionGrantCmd) Run(ctx context.Context, e *env) error { return c.apply(ctx, true) }

// Run implements the command.
func (c *CollectionRevokeCmd) Run(ctx context.Context, e *env) error { return c.apply(ctx, false) }

// apply grants (or revokes) the rights named by the flags, keeping the
// other right as it was.
func (c *CollectionGrantCmd) apply(ctx context.Context, grant bool) error {
	if !c.Read && !c.Write {
		return errors.New("say --read, --write or both")
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		col, err := st.GetCollection(ctx, c.ID)
		if err != nil {
			return err
		}
		set := func(had bool, named bool) bool {
			if named {
				return grant
			}
			return had
		}
		switch {
		case c.User != "":
			r := set(contains(col.Readers, c.User), c.Read)
			w := set(contains(col.Writers, c.User), c.Write)
			err = st.SetGrant(ctx, col.ID, c.User, r, w)
		default:
			kind, subject := store.GrantOrg, ""
			if c.Org != "" {
				o, err := st.GetOrganisation(ctx, c.Org)
				if err != nil {
					return err
				}
				subject = o.ID
			} else {
				g, err := st.GetGroup(ctx, c.Group)
				if err != nil {
					return err
				}
				kind, subject = store.GrantGroup, g.ID
			}
			var had store.Grant
			for _, g := range col.Grants {
				if g.Kind == kind && g.Subject == subject {
					had = g
				}
			}
			err = st.SetPartyGrant(ctx, col.ID, kind, subject, set(had.Read, c.Read), set(had.Write, c.Write))
		}
		action := "admin.collection.grant"
		if !grant {
			action = "admin.collection.revoke"
		}
		return audited(ctx, st, action, fmt.Sprintf("%s org=%s group=%s user=%s read=%v write=%v", col.ID, c.Org, c.Group, c.User, c.Read, c.Write), err)
	})
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// AuditCmd lists the audit log.
type AuditCmd struct {
	StoreFlags `embed:""`
	User       string        `help:"Only this principal."`
	Action     string        `help:"Only this action (objects.add, objects.read, objects.delete, objects.relay, admin.…); a prefix ending in '.' matches a family."`
	Object     string        `help:"Only records naming this object id."`
	Since      time.Duration `help:"Only the last DURATION (e.g. 24h)."`
	Limit      int           `default:"100" help:"At most this many records, newest first."`
	Before     int64         `help:"Only records older than SEQ (the SEQ of the last record of the previous page)." placeholder:"SEQ"`
}

// Run implements the command.
func (c *AuditCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		f := store.AuditFilter{Principal: c.User, Action: c.Action, Object: c.Object, Limit: c.Limit, Before: c.Before}
		if c.Since > 0 {
			f.Since = time.Now().Add(-c.Since)
		}
		recs, err := st.ListAudit(ctx, f)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tPRINCIPAL\tACTION\tPATH\tCOLLECTION\tOBJECTS\tDETAIL")
		for _, r := range recs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.At.Format(time.RFC3339Nano), r.Principal, r.Action, r.Path, r.Collection, strings.Join(r.Objects, ","), r.Detail)
		}
		return tw.Flush()
	})
}

// audited records a successful administration command in the audit log
// (as the local operator) and passes err through.
func audited(ctx context.Context, st store.Audit, action, detail string, err error) error {
	if err != nil {
		return err
	}
	return st.AppendAudit(ctx, store.AuditRecord{Principal: "cli", Action: action, Path: "mitra " + strings.ReplaceAll(action, ".", " "), Detail: detail})
}
